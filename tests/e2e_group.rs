//! End to end with several hubcap instances in one consumer group against Apache Kafka:
//! instances joining, leaving and being killed while data arrives, under the classic group
//! protocol (eager `range,roundrobin` and `cooperative-sticky`) and the KIP-848 consumer protocol;
//! a frozen instance that wakes after its partitions moved on (it must be fenced); outages of the
//! broker and of the network. Every test ends with a `--once` run and checks that the archive
//! holds every produced record exactly once (fastavro, the manifests and `hubcap audit`).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// The log line of a worker that lost its partition to another instance (src/source.rs).
const FENCED_LINE: &str = "partition stopped: another instance owns it now";
/// What the checkpoint store says when a write is refused because another instance wrote the
/// checkpoint since (src/checkpoint.rs, `CheckpointError::Fenced`).
const FENCED_CHECKPOINT: &str = "was written by another instance";
/// The same, for a manifest (src/manifest.rs, `ManifestError::Fenced`).
const FENCED_MANIFEST: &str = "changed under this instance";

/// The consumer session timeout of the continuous runs.
const SESSION: Duration = Duration::from_secs(6);

/// A continuous run with short sessions (a frozen or killed member leaves the group within
/// seconds) and small windows (files roll every second or 8 KiB, so an instance nearly always
/// has a file open), in a classic group.
fn continuous(t: &Kafka, topic: &str, group: &str, out: &Path) -> std::process::Command {
    continuous_with(t, topic, group, out, Protocol::ClassicEager)
}

fn continuous_with(
    t: &Kafka,
    topic: &str,
    group: &str,
    out: &Path,
    protocol: Protocol,
) -> std::process::Command {
    let mut cmd = hubcap();
    cmd.args(["run", "--brokers", &t.brokers, "--topic", topic])
        .args(["--group", group, "--output", out.to_str().unwrap()])
        .args([
            "--namespace",
            "ns",
            "--window-size",
            "8KiB",
            "--window-time",
            "1s",
        ]);
    if !matches!(protocol, Protocol::Consumer) {
        // With the consumer protocol the broker sets the session.
        cmd.args([
            "-X",
            &format!("session.timeout.ms={}", SESSION.as_millis()),
            "-X",
            "heartbeat.interval.ms=1000",
        ]);
    }
    for setting in protocol.settings() {
        cmd.args(["-X", setting]);
    }
    group_debug(&mut cmd);
    cmd
}

/// With `HUBCAP_TEST_GROUP_DEBUG` set, hubcap logs librdkafka's consumer-group protocol (joins,
/// syncs, heartbeats, member ids), which the failure messages then include: what it takes to
/// tell a hubcap bug from a broker that stopped assigning partitions.
fn group_debug(cmd: &mut std::process::Command) {
    if std::env::var_os("HUBCAP_TEST_GROUP_DEBUG").is_some() {
        cmd.env("HUBCAP_LOG", "info,librdkafka=debug,rdkafka=debug")
            .args(["-X", "debug=cgrp"]);
    }
}

/// Waits until every instance's last rebalance event is an assignment and together they own
/// each of the topic's partitions exactly once; returns each instance's partitions. Panics with
/// the logs if an instance exits or the group does not settle within `timeout`.
fn wait_stable(
    instances: &mut [&mut Instance],
    partitions: i32,
    timeout: Duration,
) -> Vec<Vec<i32>> {
    let deadline = Instant::now() + timeout;
    let all: Vec<i32> = (0..partitions).collect();
    loop {
        for inst in instances.iter_mut() {
            if let Some(status) = inst.exited() {
                panic!(
                    "{} exited ({status}) while the group settled\n{}",
                    inst.name,
                    inst.log()
                );
            }
        }
        let owned: Vec<Option<Vec<i32>>> = instances.iter().map(|i| i.assignment()).collect();
        if owned.iter().all(Option::is_some) {
            let mut union: Vec<i32> = owned.iter().flatten().flatten().copied().collect();
            union.sort_unstable();
            if union == all {
                return owned.into_iter().flatten().collect();
            }
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = instances.iter().map(|i| i.log()).collect();
            panic!(
                "the group did not settle on one owner per partition within {timeout:?}: {owned:?}\n{}",
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGTERM, then checks the instance flushed and exited 0 within a minute.
fn stop(inst: &mut Instance) {
    inst.signal(libc::SIGTERM);
    let status = inst.wait_exit(Duration::from_secs(60));
    assert!(
        status.success(),
        "{} after SIGTERM: {status}\n{}",
        inst.name,
        inst.log()
    );
}

/// The final `--once` run, then every check on the archive; returns the audit.
fn finish_and_audit(
    t: &Kafka,
    topic: &str,
    group: &str,
    out: &Path,
    produced: &[Produced],
    partitions: i32,
) -> Audit {
    wait_for_high_watermarks(&t.brokers, topic, partitions, produced.len() as i64);
    let mut once = hubcap();
    once.args(["run", "--brokers", &t.brokers, "--topic", topic])
        .args(["--group", group, "--output", out.to_str().unwrap()])
        .args(["--namespace", "ns", "--window-size", "8KiB", "--once"]);
    group_debug(&mut once);
    let (ok, _, stderr) = run_with_timeout(&mut once, Duration::from_secs(120));
    assert!(ok, "final --once failed:\n{stderr}");
    let files = read_local(out);
    let a = audit(&files, topic, produced);
    let listed = check_manifests(out, &files);
    assert_eq!(listed, a.files);
    let (clean, report) = audit_cli(out, group);
    assert!(
        clean && report.contains("audit: clean"),
        "hubcap audit:\n{report}"
    );
    for p in 0..partitions {
        let end = produced.iter().filter(|r| r.partition == p).count() as i64;
        assert_eq!(
            local_checkpoint(out, group, topic, p)["next_offset"],
            end,
            "partition {p}: checkpoint at the end offset"
        );
    }
    a
}

/// Whether every partition's checkpoint was last written by the process `pid`.
fn checkpoints_owned_by(out: &Path, group: &str, topic: &str, partitions: i32, pid: u32) -> bool {
    let tag = format!("-{pid}-");
    (0..partitions).all(|p| {
        checkpoint_file(out, group, topic, p).exists()
            && local_checkpoint(out, group, topic, p)["owner"]
                .as_str()
                .is_some_and(|o| o.contains(&tag))
    })
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Start(usize),
    Term(usize),
    Kill(usize),
}

/// How the members of a group share partitions.
#[derive(Debug, Clone, Copy)]
enum Protocol {
    /// The classic protocol with librdkafka's default assignors (`range,roundrobin`): every
    /// rebalance revokes everything, then assigns.
    ClassicEager,
    /// The classic protocol with `cooperative-sticky`: only moved partitions are revoked.
    ClassicCooperative,
    /// KIP-848 (`group.protocol=consumer`): the broker assigns, incrementally; sessions are the
    /// broker's (`group.consumer.session.timeout.ms`, 6 s on the test broker).
    Consumer,
}

impl Protocol {
    fn settings(self) -> &'static [&'static str] {
        match self {
            Protocol::ClassicEager => &[],
            Protocol::ClassicCooperative => &["partition.assignment.strategy=cooperative-sticky"],
            Protocol::Consumer => &["group.protocol=consumer"],
        }
    }
}

/// Three slots; every stop is a SIGTERM (flush, leave the group) or a SIGKILL (nothing flushed;
/// the group notices when the session expires). Kills land while the group is settling after
/// the previous step, and starts follow kills before the dead member's session ran out.
const STEPS: [Step; 14] = {
    use Step::*;
    [
        Start(0),
        Start(1),
        Start(2),
        Kill(1),
        Start(1),
        Term(0),
        Kill(2),
        Start(0),
        Start(2),
        Kill(0),
        Kill(1),
        Start(0),
        Term(2),
        Term(0),
    ]
};

/// Runs [`STEPS`] with one protocol while a producer writes, then checks the archive.
async fn instances_join_leave_and_die(protocol: Protocol) {
    use Step::*;
    const PARTITIONS: i32 = 8;
    let started_at = Instant::now();
    let t = Kafka::shared();
    let topic = unique("rebalance");
    let group = unique("g");
    t.create_topic(&topic, PARTITIONS).await;
    let out = tempfile::tempdir().unwrap();
    let producer = BackgroundProducer::start(&t.brokers, &topic, 20, Duration::from_millis(100));
    let member = || {
        let mut cmd = continuous_with(t, &topic, &group, out.path(), protocol);
        cmd.env("HUBCAP_LOG", "info,librdkafka=warn");
        cmd
    };

    let mut slots: Vec<Option<Instance>> = (0..3).map(|_| None).collect();
    let mut done: Vec<Instance> = Vec::new();
    let (mut started, mut terminated, mut killed) = (0, 0, 0);
    for step in STEPS {
        match step {
            Start(i) => {
                started += 1;
                let name = format!("instance {started} (slot {i})");
                assert!(slots[i].is_none());
                slots[i] = Some(Instance::spawn(&name, member()));
            }
            Term(i) => {
                let mut inst = slots[i].take().unwrap();
                stop(&mut inst);
                terminated += 1;
                done.push(inst);
            }
            Kill(i) => {
                let mut inst = slots[i].take().unwrap();
                inst.kill();
                killed += 1;
                done.push(inst);
            }
        }
        let mut running: Vec<&mut Instance> = slots.iter_mut().flatten().collect();
        if running.is_empty() {
            continue;
        }
        if matches!(step, Kill(_)) && rand::random::<bool>() {
            // Sometimes the next step comes at once, while the group still counts the dead
            // member in.
            continue;
        }
        let owned = wait_stable(&mut running, PARTITIONS, Duration::from_secs(90));
        let names: Vec<&str> = running.iter().map(|i| i.name.as_str()).collect();
        println!(
            "{protocol:?}, after {step:?} ({:.0?}): {names:?} own {owned:?}",
            started_at.elapsed()
        );
        // Each member with partitions archives after the rebalance: it is not stuck.
        for (inst, parts) in running.iter_mut().zip(&owned) {
            if !parts.is_empty() {
                let from = inst.line_count();
                inst.wait_for_line(from, "file written", Duration::from_secs(30));
            }
        }
    }
    done.extend(slots.into_iter().flatten());
    let produced = producer.finish().await;
    let fenced: usize = done.iter().map(|i| i.count_since(0, FENCED_LINE)).sum();
    let files_by_instances: usize = done.iter().map(|i| i.count_since(0, "file written")).sum();
    let a = finish_and_audit(t, &topic, &group, out.path(), &produced, PARTITIONS);
    println!(
        "rebalance test, {protocol:?}: {started} instances started, {terminated} stopped with SIGTERM, {killed} with \
         SIGKILL; they wrote {files_by_instances} files ({fenced} fenced partitions); after the final --once: {} files, \
         {} events of {} produced, {} duplicates, {} missing; {:.0?}",
        a.files,
        a.events,
        produced.len(),
        a.duplicates,
        a.missing,
        started_at.elapsed()
    );
    assert_eq!((a.events, a.duplicates, a.missing), (produced.len(), 0, 0));
    assert!(files_by_instances > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn classic_eager_group_archives_every_record_once_through_kills_and_restarts() {
    instances_join_leave_and_die(Protocol::ClassicEager).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cooperative_sticky_group_archives_every_record_once_through_kills_and_restarts() {
    instances_join_leave_and_die(Protocol::ClassicCooperative).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kip848_consumer_group_archives_every_record_once_through_kills_and_restarts() {
    instances_join_leave_and_die(Protocol::Consumer).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_instance_is_fenced_when_it_wakes_and_nothing_is_lost_or_doubled() {
    const PARTITIONS: i32 = 4;
    let started_at = Instant::now();
    let t = Kafka::shared();
    let topic = unique("zombie");
    let group = unique("g");
    t.create_topic(&topic, PARTITIONS).await;
    let out = tempfile::tempdir().unwrap();
    let producer = BackgroundProducer::start(&t.brokers, &topic, 20, Duration::from_millis(100));

    let mut a = Instance::spawn("A", continuous(t, &topic, &group, out.path()));
    a.wait_for_line(0, "partitions assigned", Duration::from_secs(60));
    a.wait_for_line(0, "file written", Duration::from_secs(30));
    // Half a window later, every window of A holds records. When A wakes, its windows publish
    // either because their time is up or because librdkafka noticed the expired session first
    // and revoked them (a revocation flushes): either way the write is refused.
    std::thread::sleep(Duration::from_millis(500));

    // Freeze A with its windows open; B joins and gets every partition once A's session expired.
    a.signal(libc::SIGSTOP);
    let frozen_at = Instant::now();
    let mut b = Instance::spawn("B", continuous(t, &topic, &group, out.path()));
    let all: Vec<i32> = (0..PARTITIONS).collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    while b.assignment().as_ref() != Some(&all) {
        assert!(
            Instant::now() < deadline,
            "B did not take over A's partitions\n{}",
            b.log()
        );
        assert!(b.exited().is_none(), "B exited\n{}", b.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let took_over = frozen_at.elapsed();
    // Claiming happens between the assignment and each partition's "partition resumes" line.
    let mut from = b.last_line_with("partitions assigned").unwrap();
    for _ in 0..PARTITIONS {
        from = b.wait_for_line(from, "partition resumes", Duration::from_secs(30)) + 1;
    }
    // Claiming a partition rewrites its checkpoint under B's name: that is what fences A.
    assert!(
        checkpoints_owned_by(out.path(), &group, &topic, PARTITIONS, b.pid()),
        "B claimed every checkpoint\n{}",
        b.log()
    );
    // B archives while A sleeps: two files per partition.
    let mut from = b.line_count();
    for _ in 0..2 * PARTITIONS {
        from = b.wait_for_line(from, "file written", Duration::from_secs(30)) + 1;
    }
    let b_files_before_wake = b.count_since(0, "file written");

    // A wakes with stale windows and a stale group membership: its checkpoint writes must be
    // refused, so it stops those partitions instead of writing over B's work.
    let a_lines_before_wake = a.line_count();
    a.signal(libc::SIGCONT);
    let at = a.wait_for_line(a_lines_before_wake, FENCED_LINE, Duration::from_secs(60));
    let fenced_line = a.lines()[at].clone();
    assert!(
        fenced_line.contains(FENCED_CHECKPOINT) || fenced_line.contains(FENCED_MANIFEST),
        "the fenced line names the refused write: {fenced_line}"
    );
    println!("A, fenced: {fenced_line}");
    assert!(
        a.exited().is_none(),
        "a fenced partition does not end the process\n{}",
        a.log()
    );

    // A rejoins; the group settles with A and B sharing the partitions, and both archive.
    let owned = wait_stable(&mut [&mut a, &mut b], PARTITIONS, Duration::from_secs(90));
    println!("after A woke: A owns {:?}, B owns {:?}", owned[0], owned[1]);
    // Nothing A did between waking and its new assignment got through: no file published.
    let lines = a.lines();
    let reassigned = a_lines_before_wake
        + lines[a_lines_before_wake..]
            .iter()
            .position(|l| l.contains("partitions assigned"))
            .unwrap();
    let stale_files: Vec<&String> = lines[a_lines_before_wake..reassigned]
        .iter()
        .filter(|l| l.contains("file written"))
        .collect();
    assert!(
        stale_files.is_empty(),
        "A published files from its stale ownership: {stale_files:#?}\n{}",
        a.log()
    );
    for (inst, parts) in [&mut a, &mut b].into_iter().zip(&owned) {
        if !parts.is_empty() {
            let from = inst.line_count();
            inst.wait_for_line(from, "file written", Duration::from_secs(30));
        }
    }
    stop(&mut a);
    stop(&mut b);
    let produced = producer.finish().await;
    let a_fenced = a.count_since(0, FENCED_LINE);
    let a_files = a.count_since(0, "file written");
    let b_files = b.count_since(0, "file written");
    let audit = finish_and_audit(t, &topic, &group, out.path(), &produced, PARTITIONS);
    println!(
        "zombie test: B took over {took_over:.0?} after A froze; B wrote {b_files_before_wake} files while A slept; \
         A was fenced on {a_fenced} partitions; A wrote {a_files} files in all, B {b_files}; after the final --once: \
         {} files, {} events of {} produced, {} duplicates, {} missing; {:.0?}",
        audit.files,
        audit.events,
        produced.len(),
        audit.duplicates,
        audit.missing,
        started_at.elapsed()
    );
    assert_eq!(
        (audit.events, audit.duplicates, audit.missing),
        (produced.len(), 0, 0)
    );
}

/// Waits until every partition's checkpoint reached the high watermark as it is now, i.e. the
/// instance archived everything produced so far; returns how long that took.
fn wait_caught_up(
    t: &Kafka,
    topic: &str,
    group: &str,
    out: &Path,
    partitions: i32,
    inst: &mut Instance,
    timeout: Duration,
) -> Duration {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &t.brokers)
        .create()
        .unwrap();
    let marks: Vec<i64> = (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap()
                .1
        })
        .collect();
    let started = Instant::now();
    loop {
        let behind: Vec<(i32, i64, i64)> = (0..partitions)
            .map(|p| {
                (
                    p,
                    local_next_offset(out, group, topic, p),
                    marks[p as usize],
                )
            })
            .filter(|(_, next, high)| next < high)
            .collect();
        if behind.is_empty() {
            return started.elapsed();
        }
        assert!(
            inst.exited().is_none(),
            "{} exited\n{}",
            inst.name,
            inst.log()
        );
        assert!(
            started.elapsed() < timeout,
            "{} did not catch up within {timeout:?}: (partition, checkpoint, high watermark) {behind:?}\n{}",
            inst.name,
            inst.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Two outages while one instance runs, each followed by a check that it archived what was
/// produced since:
/// 1. the broker freezes (SIGSTOP) for a while shorter than the session: connections stay open
///    and requests wait, then everything carries on;
/// 2. the network drops everything for longer than the session and the connections break when it
///    ends: the instance loses its session, revokes its partitions (flushing them), rejoins and
///    resumes from its checkpoints.
#[tokio::test(flavor = "multi_thread")]
async fn broker_and_network_outages_stall_the_archiver_which_resumes_without_loss_or_duplicates() {
    const PARTITIONS: i32 = 4;
    const FREEZE: Duration = Duration::from_secs(4); // shorter than the 6 s session
    const PARTITION: Duration = Duration::from_secs(10); // longer than the 6 s session
    let started_at = Instant::now();
    let (t, proxy) = Kafka::start_behind_proxy();
    let topic = unique("outage");
    let group = unique("g");
    t.create_topic(&topic, PARTITIONS).await;
    let out = tempfile::tempdir().unwrap();
    let producer = BackgroundProducer::start(&t.brokers, &topic, 20, Duration::from_millis(100));

    let mut h = Instance::spawn("hubcap", continuous(&t, &topic, &group, out.path()));
    h.wait_for_line(0, "partitions assigned", Duration::from_secs(60));
    h.wait_for_line(0, "file written", Duration::from_secs(30));

    // 1. The broker freezes; the producer's requests wait, and so do hubcap's.
    let before_freeze = h.line_count();
    t.pause();
    std::thread::sleep(FREEZE);
    assert!(
        h.exited().is_none(),
        "hubcap survives a frozen broker\n{}",
        h.log()
    );
    t.resume();
    producer.wait_for_more(200, Duration::from_secs(60)).await;
    let freeze_caught_up = wait_caught_up(
        &t,
        &topic,
        &group,
        out.path(),
        PARTITIONS,
        &mut h,
        Duration::from_secs(60),
    );
    let freeze_revokes = h.count_since(before_freeze, "partitions revoked");

    // 2. The network drops everything. The producer holds off (a produce request lost with its
    //    connection would be retried and written twice by the broker, which is not what this
    //    tests); hubcap's session runs out, so it revokes its partitions, flushing them.
    producer.hold().await;
    let before_cut = h.line_count();
    let acked_before_cut = producer.acked();
    proxy.cut();
    let cut_at = Instant::now();
    let revoked = h.wait_for_line(
        before_cut,
        "partitions revoked",
        PARTITION + Duration::from_secs(20),
    );
    let revoked_after = cut_at.elapsed();
    if let Some(rest) = PARTITION.checked_sub(cut_at.elapsed()) {
        std::thread::sleep(rest);
    }
    assert!(
        h.exited().is_none(),
        "hubcap survives the partition\n{}",
        h.log()
    );
    proxy.heal();
    producer.release();
    let healed_at = Instant::now();
    h.wait_for_line(revoked, "partitions assigned", Duration::from_secs(60));
    let rejoined = healed_at.elapsed();
    producer.wait_for_more(200, Duration::from_secs(60)).await;
    let partition_caught_up = wait_caught_up(
        &t,
        &topic,
        &group,
        out.path(),
        PARTITIONS,
        &mut h,
        Duration::from_secs(60),
    );
    let files_after = h.count_since(revoked, "file written");

    stop(&mut h);
    let produced = producer.finish().await;
    let a = finish_and_audit(&t, &topic, &group, out.path(), &produced, PARTITIONS);
    println!(
        "outage test: broker frozen {FREEZE:?} ({freeze_revokes} revocations), caught up {freeze_caught_up:.1?} after the \
         producer's next 200 records; network cut {PARTITION:?} with {acked_before_cut} records acked: partitions revoked \
         after {revoked_after:.1?}, assigned again {rejoined:.1?} after the cut healed, {files_after} files since, caught up \
         {partition_caught_up:.1?} after the next 200 records; after the final --once: {} files, {} events of {} \
         produced, {} duplicates, {} missing; {:.0?}",
        a.files,
        a.events,
        produced.len(),
        a.duplicates,
        a.missing,
        started_at.elapsed()
    );
    assert_eq!((a.events, a.duplicates, a.missing), (produced.len(), 0, 0));
}
