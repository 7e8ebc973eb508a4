//! Real Capture files (../shared/capture-samples): what inspect prints of them.

use chrono::DateTime;

use super::*;
use crate::record::format_enqueued_time;

#[tokio::test]
async fn stats_of_real_capture_samples_match_their_readme() {
    // (file, records, first/last SequenceNumber, first/last EnqueuedTimeUtc, bytes), from
    // shared/capture-samples/README.md.
    let table = [
        (
            COURSELABS_13,
            2000,
            1000,
            2999,
            "11/1/2022 5:36:07 PM",
            "11/1/2022 5:43:40 PM",
            376_151,
        ),
        (
            METERED_16_50,
            1,
            1,
            1,
            "12/9/2022 4:51:25 PM",
            "12/9/2022 4:51:25 PM",
            823,
        ),
        (
            METERED_17_10,
            20,
            4,
            23,
            "12/9/2022 5:10:16 PM",
            "12/9/2022 5:12:26 PM",
            6776,
        ),
        (
            USQL_EHC,
            677,
            4141,
            4817,
            "12/7/2018 10:22:49 AM",
            "12/7/2018 10:24:11 AM",
            70_323,
        ),
    ];
    for (path, records, first, last, first_time, last_time, bytes) in table {
        let (lines, totals) = run(path, None, true).await;
        assert_eq!(
            lines,
            vec![
                json!({
                    "file": file_name(path),
                    "format": "avro",
                    "bytes": bytes,
                    "records": records,
                    "first_sequence_number": first,
                    "last_sequence_number": last,
                    "first_enqueued_time_utc": first_time,
                    "last_enqueued_time_utc": last_time,
                }),
                json!({"total": true, "files": 1, "records": records, "bytes": bytes}),
            ],
            "{path}"
        );
        assert_eq!(
            totals,
            InspectTotals {
                files: 1,
                records,
                bytes
            }
        );
    }
}

#[tokio::test]
async fn records_of_usql_sample_carry_typed_properties() {
    let (raw, totals) = run_raw(USQL_EHC, Some(3), false).await.unwrap();
    // Field order is part of the output: file first, then the Capture fields in schema order.
    assert!(
        raw.starts_with(
            r#"{"file":"azure-usql__EHC.avro","SequenceNumber":4141,"Offset":"353424","EnqueuedTimeUtc":"12/7/2018 10:22:49 AM","SystemProperties":{},"Properties":{"GUID":"#
        ),
        "{raw}"
    );
    let lines = parse_lines(&raw);
    assert_eq!(lines.len(), 3);
    assert_eq!(totals.records, 3);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["SequenceNumber"], json!(4141 + i as i64));
        assert_eq!(line["SystemProperties"], json!({}));
        let props = line["Properties"].as_object().unwrap();
        assert_eq!(
            props.keys().collect::<Vec<_>>(),
            ["GUID", "RandomInt"],
            "{line}"
        );
        assert!(props["GUID"].is_string(), "{line}");
        assert!(props["RandomInt"].is_i64(), "{line}");
        let body = line["Body"].as_str().unwrap();
        assert!(body.starts_with("Message "), "{body}");
    }
}

#[tokio::test]
async fn records_of_courselabs_sample_carry_the_enqueue_time() {
    let (lines, _) = run(COURSELABS_13, Some(3), false).await;
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["Offset"], "174976");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["file"], file_name(COURSELABS_13));
        assert_eq!(line["SequenceNumber"], json!(1000 + i as i64));
        let system = line["SystemProperties"].as_object().unwrap();
        assert_eq!(system.len(), 1, "{line}");
        let ms = system["x-opt-enqueued-time"].as_i64().unwrap();
        // The long and the string Capture wrote for the same instant agree.
        let formatted = format_enqueued_time(DateTime::from_timestamp_millis(ms).unwrap());
        assert_eq!(line["EnqueuedTimeUtc"], formatted);
        assert_eq!(line["Properties"], json!({}));
        // The body is JSON text, printed as a string.
        let body: Json = serde_json::from_str(line["Body"].as_str().unwrap()).unwrap();
        assert!(body.is_object(), "{body}");
    }
}

#[tokio::test]
async fn records_of_metered_sample_carry_the_partition_key() {
    let (lines, totals) = run(METERED_16_50, Some(3), false).await;
    assert_eq!(lines.len(), 1, "the file holds one record");
    assert_eq!(totals.records, 1);
    let line = &lines[0];
    assert_eq!(line["SequenceNumber"], 1);
    assert_eq!(line["Offset"], "1456");
    assert_eq!(line["EnqueuedTimeUtc"], "12/9/2022 4:51:25 PM");
    assert!(line["SystemProperties"]["x-opt-partition-key"].is_string());
    assert!(line["SystemProperties"]["x-opt-enqueued-time"].is_i64());
}
