"""Creates a blob container on Azurite with public read access (one Shared Key-signed call with
the emulator's well-known key). Usage: azurite_container.py BLOB_ENDPOINT CONTAINER [private]
where BLOB_ENDPOINT is like http://127.0.0.1:10000/devstoreaccount1. 201 or 409 is success.
With `private`, the container allows no anonymous access (Azure's default)."""
import base64
import email.utils
import hashlib
import hmac
import sys
import urllib.error
import urllib.request

ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def create(endpoint, container, public=True):
    headers = {
        "x-ms-date": email.utils.formatdate(usegmt=True),
        "x-ms-version": "2021-08-06",
    }
    if public:
        headers["x-ms-blob-public-access"] = "container"
    canonical_headers = "".join(f"{k}:{headers[k]}\n" for k in sorted(headers))
    # Path-style emulator URLs put the account name twice in the canonical resource.
    resource = f"/{ACCOUNT}/{ACCOUNT}/{container}\nrestype:container"
    to_sign = "PUT\n" + "\n" * 11 + canonical_headers + resource
    sig = base64.b64encode(hmac.new(base64.b64decode(KEY), to_sign.encode(), hashlib.sha256).digest()).decode()
    headers["Authorization"] = f"SharedKey {ACCOUNT}:{sig}"
    req = urllib.request.Request(f"{endpoint}/{container}?restype=container", method="PUT", headers=headers)
    try:
        return urllib.request.urlopen(req).status
    except urllib.error.HTTPError as e:
        if e.code == 409:
            return 409
        raise SystemExit(f"create container failed: {e.code} {e.read()[:300]!r}")


if __name__ == "__main__":
    print(create(sys.argv[1], sys.argv[2], public=sys.argv[3:] != ["private"]))
