//! What readers see besides the archive (duplicates, strays) and `--verify`.

use super::*;

#[tokio::test]
async fn every_file_a_reader_picks_up_is_archived_or_a_duplicate_or_a_stray() {
    let a = Archive::local();
    let original = a.listed_file(0, 0..=9).await;
    a.file(0, 10..=19).await;
    a.checkpoint(0, 20, None).await;
    let folder = original.rsplit_once('/').unwrap().0.to_string();
    // A second copy beside the original, under another name: a duplicate.
    let copy = format!("{folder}/copy of it.avro");
    a.put(&copy, encode(AVRO, "t", 0, &(0..10).collect::<Vec<_>>()))
        .await;
    // The same records copied elsewhere: a duplicate too.
    a.put(
        "backup/old.avro",
        encode(AVRO, "t", 0, &(10..20).collect::<Vec<_>>()),
    )
    .await;
    // Not a Capture file; and a Capture file of offsets nothing archived holds.
    a.put("elsewhere/data.parquet", b"PAR1 not really".to_vec())
        .await;
    a.put("elsewhere/other.avro", encode(AVRO, "t", 0, &[500, 501]))
        .await;
    // Not picked up by readers: folders starting with `_` or `.`, other extensions, and a
    // local upload being staged (object_store's `name#N`).
    a.put("_quarantine/x.avro", b"x".to_vec()).await;
    a.put(".tmp/x.parquet", b"x".to_vec()).await;
    a.put("notes.txt", b"x".to_vec()).await;
    let staged = a
        .dir
        .as_ref()
        .unwrap()
        .path()
        .join(format!("{}#1", a.name(0, 20)));
    std::fs::write(staged, b"partial").unwrap();

    let (report, text) = a.audit().await;
    assert!(!report.clean(), "{text}");
    let duplicates: Vec<(&str, i64, i64)> = report
        .duplicates
        .iter()
        .map(|d| (d.path.as_str(), d.first_offset, d.last_offset))
        .collect();
    assert_eq!(
        duplicates,
        vec![("backup/old.avro", 10, 19), (copy.as_str(), 0, 9)]
    );
    assert_eq!(report.duplicates[1].archived, vec![original.clone()]);
    let strays: Vec<&str> = report.strays.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        strays,
        vec!["elsewhere/data.parquet", "elsewhere/other.avro"]
    );
    assert!(report.strays[0]
        .reason
        .starts_with("not a readable Capture file"));
    assert!(report.strays[1].reason.contains("500..=501"), "{text}");
    let failures = report.failures();
    assert_eq!((failures.duplicates, failures.strays), (2, 2));
    assert!(
        text.contains(&format!("duplicate: {copy} holds offsets 0..=9")),
        "{text}"
    );
    assert!(text.contains("stray: elsewhere/other.avro"), "{text}");
    assert_eq!(partition(&report, 0).unreadable, vec![]);

    // --allow-stray: strays are warnings; duplicates still fail.
    let mut args = a.args();
    args.allow_stray = true;
    let (report, text) = a.audit_with(&args).await;
    assert_eq!(report.failures().total(), 2, "{text}");
    assert!(
        text.contains("stray (allowed): elsewhere/other.avro"),
        "{text}"
    );
    for d in ["backup/old.avro", copy.as_str()] {
        a.output.store.delete(&a.output.path(d)).await.unwrap();
    }
    let (report, text) = a.audit_with(&args).await;
    assert!(report.clean(), "{text}");
    assert!(text.contains("2 allowed strays"), "{text}");
}

#[tokio::test]
async fn verify_finds_files_cut_short_or_changed_since_they_were_archived() {
    let a = Archive::local();
    let mut names = Vec::new();
    for first in [0, 10, 20] {
        names.push(a.listed_file(0, first..=first + 9).await);
    }
    a.checkpoint(0, 30, None).await;
    let mut verify = a.args();
    verify.verify = true;
    let (report, text) = a.audit_with(&verify).await;
    assert!(report.clean(), "{text}");

    let local = |name: &str| a.dir.as_ref().unwrap().path().join(name);
    // One bit flipped, the size unchanged: only reading the file shows it.
    let mut bytes = std::fs::read(local(&names[1])).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(local(&names[1]), &bytes).unwrap();
    // Cut short.
    let bytes = std::fs::read(local(&names[2])).unwrap();
    std::fs::write(local(&names[2]), &bytes[..bytes.len() - 7]).unwrap();

    let (report, text) = a.audit().await;
    let cut: Vec<&str> = partition(&report, 0)
        .unreadable
        .iter()
        .map(|b| b.path.as_str())
        .collect();
    assert_eq!(cut, vec![names[2].as_str()], "without --verify: {text}");
    let (report, text) = a.audit_with(&verify).await;
    let bad = &partition(&report, 0).unreadable;
    let found: Vec<&str> = bad.iter().map(|b| b.path.as_str()).collect();
    assert_eq!(found, vec![names[1].as_str(), names[2].as_str()], "{text}");
    assert!(
        bad[0]
            .reason
            .starts_with("its bytes changed since it was archived: CRC32C"),
        "{text}"
    );
    assert_eq!(report.failures().unreadable, 2);
}
