//! `--once` progress: records left to each partition's end offset, the rate and an ETA.
//!
//! On a terminal (and without `--quiet`, with text logs) a live view draws one indicatif bar per
//! partition on stderr; log lines go through [`LogWriter`], which hides the bars while a line is
//! written so the two never garble each other. Off a terminal, with `--quiet` or with JSON logs,
//! the same numbers come as one log line per topic every `--progress-interval` (10 s; hidden
//! flag, env HUBCAP_PROGRESS_INTERVAL) and once at the end.
//!
//! The numbers are the partition workers' own ([`crate::observe::metrics::PartitionStats`]): the start
//! offset, the end offset taken at start and the position (the next offset read into a
//! window), so progress moves with each batch, not only when a file is archived. A partition
//! counts while this process owns it or once it reached its end; one revoked before its end is
//! left out (another member of the group finishes it).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use crate::observe::metrics::{Metrics, PartitionSnapshot};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Live bars on stderr (a terminal).
    Bars,
    /// Periodic log lines.
    Log,
}

/// The bars being drawn, for [`LogWriter`] to hide while it writes a line.
static BARS: RwLock<Option<MultiProgress>> = RwLock::new(None);

/// Registers the bars another view draws (`None`: no more), so that log lines hide them too.
pub fn set_bars(bars: Option<MultiProgress>) {
    if let Ok(mut b) = BARS.write() {
        *b = bars;
    }
}

/// Runs `f` (which writes to stderr) with the bars hidden, if any are drawn.
fn suspended<R>(f: impl FnOnce() -> R) -> R {
    let bars = BARS.read().ok().and_then(|b| b.clone());
    match bars {
        Some(bars) => bars.suspend(f),
        None => f(),
    }
}

/// A tracing writer to stderr that hides the progress bars while a log line is written.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;
    fn make_writer(&'a self) -> LogLine {
        LogLine
    }
}

/// One log line's writes (tracing's formatter writes each event with one `write_all`).
#[derive(Debug)]
pub struct LogLine;

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        suspended(|| std::io::stderr().write(buf))
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        suspended(|| std::io::stderr().write_all(buf))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// One partition's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Part {
    /// Records from the start offset to the end offset.
    pub total: u64,
    /// Records read into windows so far.
    pub done: u64,
}

impl Part {
    /// A partition with a known end that counts (see the module comment), else `None`.
    pub fn of(p: &PartitionSnapshot) -> Option<Part> {
        let (start, end) = (p.start?, p.end?);
        let position = p.position.unwrap_or(start).max(p.archived.unwrap_or(start));
        let total = u64::try_from(end - start).unwrap_or(0);
        let done = u64::try_from(position - start).unwrap_or(0).min(total);
        (p.assigned || done == total).then_some(Part { total, done })
    }

    pub fn left(&self) -> u64 {
        self.total - self.done
    }
}

/// A topic's progress: partitions summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopicProgress {
    pub total: u64,
    pub done: u64,
    pub partitions: usize,
    pub partitions_done: usize,
}

/// Sums the partitions of each topic.
pub fn by_topic(parts: &[PartitionSnapshot]) -> BTreeMap<String, TopicProgress> {
    let mut out: BTreeMap<String, TopicProgress> = BTreeMap::new();
    for p in parts {
        if let Some(part) = Part::of(p) {
            let t = out.entry(p.topic.clone()).or_default();
            t.total += part.total;
            t.done += part.done;
            t.partitions += 1;
            t.partitions_done += usize::from(part.left() == 0);
        }
    }
    out
}

/// "1m05s", "12s", or "-" when nothing moves.
pub fn eta(left: u64, rate: f64) -> String {
    if left == 0 {
        return "0s".into();
    }
    if rate <= 0.0 || !rate.is_finite() {
        return "-".into();
    }
    let secs = (left as f64 / rate).ceil() as u64;
    match secs {
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

/// The running progress task; [`Progress::finish`] ends it.
pub struct Progress {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Progress {
    pub fn start(metrics: Arc<Metrics>, view: View, every: Duration) -> Progress {
        let (stop, stopped) = watch::channel(false);
        let task = match view {
            View::Bars => tokio::spawn(bars(metrics, stopped)),
            View::Log => tokio::spawn(lines(metrics, every, stopped)),
        };
        Progress { stop, task }
    }

    /// Stops the view after one last update.
    pub async fn finish(mut self) {
        let _ = self.stop.send(true);
        let _ = (&mut self.task).await;
    }
}

impl Drop for Progress {
    /// A run that fails before [`Progress::finish`] leaves no view running.
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits `every` or until stopped; `false` once stopped.
async fn tick(stopped: &mut watch::Receiver<bool>, every: Duration) -> bool {
    if *stopped.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(every) => true,
        _ = stopped.changed() => false,
    }
}

/// The log-line form: one line per topic every `every`, and a last one at the end.
async fn lines(metrics: Arc<Metrics>, every: Duration, mut stopped: watch::Receiver<bool>) {
    let mut last: BTreeMap<String, (u64, Instant)> = BTreeMap::new();
    let started = Instant::now();
    loop {
        let running = tick(&mut stopped, every).await;
        for (topic, t) in by_topic(&metrics.snapshot()) {
            let now = Instant::now();
            let (before, at) = last.get(&topic).copied().unwrap_or((0, started));
            let secs = now.duration_since(at).as_secs_f64();
            let rate = if running && secs > 0.0 {
                t.done.saturating_sub(before) as f64 / secs
            } else {
                t.done as f64 / started.elapsed().as_secs_f64().max(1e-3)
            };
            last.insert(topic.clone(), (t.done, now));
            let left = t.total - t.done;
            let percent = if t.total == 0 {
                100.0
            } else {
                t.done as f64 * 100.0 / t.total as f64
            };
            info!(
                %topic,
                done = t.done,
                total = t.total,
                left,
                percent = format!("{percent:.1}"),
                rate = format!("{rate:.0}/s"),
                eta = eta(left, rate),
                partitions_done = t.partitions_done,
                partitions = t.partitions,
                "{}",
                if running { "progress" } else { "progress: final" }
            );
        }
        if !running {
            return;
        }
    }
}

/// A partition's bar and its rate.
struct Shown {
    bar: ProgressBar,
    rate: Rate,
}

/// Records per second, smoothed over the view's ticks.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    done: u64,
    at: Instant,
    per_sec: Option<f64>,
}

impl Rate {
    pub fn new(done: u64, at: Instant) -> Rate {
        Rate {
            done,
            at,
            per_sec: None,
        }
    }

    /// Folds in `done` at `at` (an exponential moving average, so one slow tick does not
    /// swing the ETA) and returns the rate.
    pub fn update(&mut self, done: u64, at: Instant) -> f64 {
        let secs = at.duration_since(self.at).as_secs_f64();
        if secs > 0.0 {
            let now = done.saturating_sub(self.done) as f64 / secs;
            let smoothed = self.per_sec.map_or(now, |r| 0.8 * r + 0.2 * now);
            self.per_sec = Some(smoothed);
            (self.done, self.at) = (done, at);
        }
        self.per_sec.unwrap_or(0.0)
    }
}

/// The terminal form: one bar per partition, redrawn a few times a second.
async fn bars(metrics: Arc<Metrics>, mut stopped: watch::Receiver<bool>) {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
    if let Ok(mut b) = BARS.write() {
        *b = Some(multi.clone());
    }
    let style = ProgressStyle::with_template("{prefix:<24!} {wide_bar} {percent:>3}% {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let mut shown: BTreeMap<(String, i32), Shown> = BTreeMap::new();
    loop {
        let running = tick(&mut stopped, Duration::from_millis(250)).await;
        let now = Instant::now();
        for p in metrics.snapshot() {
            let Some(part) = Part::of(&p) else { continue };
            let s = shown
                .entry((p.topic.clone(), p.partition))
                .or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new(part.total).with_style(style.clone()));
                    bar.set_prefix(format!("{} / {}", p.topic, p.partition));
                    Shown {
                        bar,
                        rate: Rate::new(part.done, now),
                    }
                });
            if s.bar.is_finished() {
                continue;
            }
            let rate = s.rate.update(part.done, now);
            // The message first: setting the position may draw.
            s.bar.set_message(format!(
                "{}/{} · {} left · {rate:.0}/s · ETA {}",
                part.done,
                part.total,
                part.left(),
                eta(part.left(), rate)
            ));
            s.bar.set_length(part.total);
            s.bar.set_position(part.done);
            if part.left() == 0 {
                s.bar.finish();
            }
        }
        if !running {
            break;
        }
    }
    for s in shown.values() {
        if !s.bar.is_finished() {
            s.bar.abandon();
        }
    }
    if let Ok(mut b) = BARS.write() {
        *b = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(topic: &str, start: i64, end: i64, position: i64, assigned: bool) -> PartitionSnapshot {
        PartitionSnapshot {
            topic: topic.into(),
            start: Some(start),
            end: Some(end),
            position: Some(position),
            assigned,
            ..Default::default()
        }
    }

    #[test]
    fn partitions_sum_per_topic_and_revoked_unfinished_ones_are_left_out() {
        let parts = [
            snap("a", 0, 100, 40, true),
            snap("a", 10, 60, 60, false), // done, then released: counts
            snap("a", 0, 500, 20, false), // revoked before its end: another member's now
            snap("b", 5, 5, 5, true),     // nothing to do
            PartitionSnapshot {
                topic: "c".into(),
                start: Some(0),
                assigned: true,
                ..Default::default()
            }, // no end: a continuous run
        ];
        let got = by_topic(&parts);
        assert_eq!(
            got["a"],
            TopicProgress {
                total: 150,
                done: 90,
                partitions: 2,
                partitions_done: 1
            }
        );
        assert_eq!(got["b"].partitions_done, 1);
        assert!(!got.contains_key("c"));
    }

    #[test]
    fn position_behind_the_checkpoint_counts_the_checkpoint() {
        let mut p = snap("a", 0, 100, 0, true);
        p.archived = Some(30);
        assert_eq!(
            Part::of(&p),
            Some(Part {
                total: 100,
                done: 30
            })
        );
    }

    #[test]
    fn rates_are_smoothed() {
        let t0 = Instant::now();
        let mut r = Rate::new(0, t0);
        assert_eq!(r.update(100, t0 + Duration::from_secs(1)), 100.0);
        // A stalled second pulls the rate down, not to zero.
        assert_eq!(r.update(100, t0 + Duration::from_secs(2)), 80.0);
        // No time passed: the rate stands.
        assert_eq!(r.update(500, t0 + Duration::from_secs(2)), 80.0);
    }

    #[test]
    fn etas() {
        assert_eq!(eta(0, 0.0), "0s");
        assert_eq!(eta(100, 0.0), "-");
        assert_eq!(eta(100, 10.0), "10s");
        assert_eq!(eta(650, 10.0), "1m05s");
        assert_eq!(eta(36_000, 10.0), "1h00m");
    }
}
