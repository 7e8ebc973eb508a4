"""Azure SDK checkpoints on Azurite, through the Python SDK's own blob checkpoint store
(azure-eventhub-checkpointstoreblob, which vendors the storage client it lists blobs with).

  sdk_checkpoints.py list BLOB_ENDPOINT CONTAINER
      prints {"blobs": [{"name", "size", "metadata"}, ...]}: every blob in the container with its
      metadata, listed as BlobCheckpointStore.list_checkpoints lists them (include=metadata).
  sdk_checkpoints.py update BLOB_ENDPOINT CONTAINER NAMESPACE HUB GROUP PARTITION SEQUENCE OFFSET
      writes a checkpoint with BlobCheckpointStore.update_checkpoint, as a processor does, then
      prints what list_checkpoints returns for NAMESPACE/HUB/GROUP.

BLOB_ENDPOINT is like http://127.0.0.1:10000/devstoreaccount1; the emulator's well-known key
signs the requests."""
import json
import sys

from azure.core.credentials import AzureNamedKeyCredential
from azure.eventhub.extensions.checkpointstoreblob import BlobCheckpointStore

ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def store(endpoint, container):
    return BlobCheckpointStore(endpoint, container, credential=AzureNamedKeyCredential(ACCOUNT, KEY))


def main(argv):
    command, endpoint, container = argv[:3]
    s = store(endpoint, container)
    if command == "list":
        blobs = [
            {"name": b.name, "size": b.size, "metadata": dict(b.metadata or {})}
            # pylint: disable=protected-access
            for b in s._container_client.list_blobs(include=["metadata"])
        ]
        print(json.dumps({"blobs": blobs}))
    elif command == "update":
        namespace, hub, group, partition, sequence, offset = argv[3:9]
        s.update_checkpoint(
            {
                "fully_qualified_namespace": namespace,
                "eventhub_name": hub,
                "consumer_group": group,
                "partition_id": partition,
                "sequence_number": int(sequence),
                "offset": offset,
            }
        )
        print(json.dumps({"checkpoints": s.list_checkpoints(namespace, hub, group)}))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
