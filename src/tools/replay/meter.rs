//! What a replay shows while it runs, as `run --once` does: on a terminal a bar (the archive's
//! bytes read of its total, events, the rate and an ETA), otherwise a log line every
//! [`LOG_EVERY`]. The bytes are the files' sizes: how many events a file holds is known only
//! once it is read.

use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::observe::progress::{self, Rate, View};

/// How often a replay off a terminal logs how far it got.
const LOG_EVERY: Duration = Duration::from_secs(10);

pub struct Meter {
    /// The bar, on a terminal.
    bar: Option<ProgressBar>,
    /// The archive's bytes to read, and read so far.
    total: u64,
    read: u64,
    files: usize,
    files_done: usize,
    events: u64,
    started: Instant,
    /// When the last log line or bar message was written.
    said: Instant,
    rate: Rate,
}

impl Meter {
    /// A meter of `files` files holding `total` bytes.
    pub fn start(view: View, files: usize, total: u64) -> Meter {
        let now = Instant::now();
        let bar = (view == View::Bars).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            let style = ProgressStyle::with_template("{prefix} {wide_bar} {percent:>3}% {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            let bar = multi.add(ProgressBar::new(total).with_style(style));
            bar.set_prefix("replay");
            progress::set_bars(Some(multi));
            bar
        });
        Meter {
            bar,
            total,
            read: 0,
            files,
            files_done: 0,
            events: 0,
            started: now,
            said: now,
            rate: Rate::new(0, now),
        }
    }

    /// Counts `read` more bytes of the archive, `events` more events produced, and a file done
    /// when `file_done`.
    pub fn advance(&mut self, read: u64, events: u64, file_done: bool) {
        self.read += read;
        self.events += events;
        self.files_done += usize::from(file_done);
        let now = Instant::now();
        let every = match self.bar {
            Some(_) => Duration::from_millis(250),
            None => LOG_EVERY,
        };
        if now.duration_since(self.said) < every {
            return;
        }
        self.said = now;
        let bytes_per_s = self.rate.update(self.read, now);
        let left = self.total.saturating_sub(self.read);
        let eta = progress::eta(left, bytes_per_s);
        let events_per_s = self.events_per_s(now);
        match &self.bar {
            Some(bar) => self.draw(bar, &format!("ETA {eta}"), now),
            None => tracing::info!(
                files = self.files_done,
                of = self.files,
                events = self.events,
                events_per_s = events_per_s as u64,
                eta = %eta,
                "replaying"
            ),
        }
    }

    fn events_per_s(&self, now: Instant) -> f64 {
        self.events as f64 / now.duration_since(self.started).as_secs_f64().max(1e-3)
    }

    fn draw(&self, bar: &ProgressBar, end: &str, now: Instant) {
        // The message first: setting the position may draw.
        bar.set_message(format!(
            "{} events · {:.0}/s · {}/{} files · {end}",
            self.events,
            self.events_per_s(now),
            self.files_done,
            self.files
        ));
        bar.set_position(self.read);
    }

    /// Ends the bar, showing the final numbers.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            self.draw(bar, "done", Instant::now());
            bar.finish();
            progress::set_bars(None);
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            if !bar.is_finished() {
                bar.abandon();
                progress::set_bars(None);
            }
        }
    }
}
