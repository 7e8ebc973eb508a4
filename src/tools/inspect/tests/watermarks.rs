use super::*;
use crate::state::checkpoint::CheckpointStore;
use crate::state::watermark::Watermarks;

#[tokio::test]
async fn watermarks_print_one_line_per_topic_with_how_far_behind() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().to_str().unwrap();
    let root = Location::open(spec, "--output").unwrap();
    let checkpoints = CheckpointStore::new(root.child("_checkpoints"), "g");
    let checked = chrono::Utc::now().timestamp_millis() - 60_000;
    for topic in ["orders", "clicks"] {
        let mut c = checkpoints.document(topic, 0, 5, "a");
        c.last_time_ms = Some(checked - 1_000);
        checkpoints.save(&c, None).await.unwrap();
    }
    let w = Watermarks::new(&root, "g");
    // orders: at its end; clicks: records wait.
    w.advance(&checkpoints, "orders", &[(0, 0, 5)], checked, "me")
        .await
        .unwrap();
    w.advance(&checkpoints, "clicks", &[(0, 0, 9)], checked, "me")
        .await
        .unwrap();

    let mut a = args(spec, None, false);
    a.watermarks = true;
    let mut out = Vec::new();
    let totals = inspect(&a, &mut out).await.unwrap();
    let lines = parse_lines(std::str::from_utf8(&out).unwrap());
    assert_eq!(totals.files, 2);
    let topics: Vec<_> = lines.iter().map(|l| l["topic"].as_str().unwrap()).collect();
    assert_eq!(topics, ["clicks", "orders"]);
    assert_eq!(lines[1]["complete_until_ms"], checked);
    assert_eq!(lines[0]["complete_until_ms"], checked - 1_000);
    assert_eq!(lines[0]["partitions"][0]["basis"], "behind");
    let behind = lines[1]["behind_seconds"].as_f64().unwrap();
    assert!((60.0..120.0).contains(&behind), "{behind}");
    assert_eq!(lines[1]["file"], "_watermarks/g/orders.json");

    // An archive without any: the error says where they come from.
    let empty = tempfile::tempdir().unwrap();
    let mut a = args(empty.path().to_str().unwrap(), None, false);
    a.watermarks = true;
    let err = inspect(&a, &mut Vec::new()).await.unwrap_err();
    assert!(matches!(err, InspectError::NoWatermarks { .. }), "{err}");
    assert!(err.to_string().contains("--watermark-interval"), "{err}");
}
