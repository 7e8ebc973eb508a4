//! The archiver's time: tokio's [`Instant`] for deadlines (windows, retries, restarts), and wall
//! time for object names, manifests and checkpoints, read from one place. A clock that follows
//! tokio's from a given wall time lets tests with paused time (`start_paused`) advance both at
//! once and know what the names will say.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct Clock(Arc<Kind>);

#[derive(Debug)]
enum Kind {
    System,
    /// Wall time `wall` at tokio's `origin`, moving as tokio's clock moves.
    Following {
        origin: Instant,
        wall: DateTime<Utc>,
    },
}

impl Clock {
    /// The system's wall clock, and tokio's clock for deadlines.
    pub fn system() -> Clock {
        Clock(Arc::new(Kind::System))
    }

    /// A clock that reads `wall` now and then moves with tokio's clock (paused or not).
    pub fn following(wall: DateTime<Utc>) -> Clock {
        Clock(Arc::new(Kind::Following {
            origin: Instant::now(),
            wall,
        }))
    }

    /// Now, for deadlines.
    pub fn now(&self) -> Instant {
        Instant::now()
    }

    /// Now, on the wall.
    pub fn wall(&self) -> DateTime<Utc> {
        self.wall_at(self.now())
    }

    /// The wall time of instant `at`.
    pub fn wall_at(&self, at: Instant) -> DateTime<Utc> {
        match &*self.0 {
            Kind::System => {
                let now = Instant::now();
                let wall = Utc::now();
                if at <= now {
                    wall - chrono::Duration::from_std(now - at).unwrap_or_default()
                } else {
                    wall + chrono::Duration::from_std(at - now).unwrap_or_default()
                }
            }
            Kind::Following { origin, wall } => {
                *wall
                    + chrono::Duration::from_std(at.saturating_duration_since(*origin))
                        .unwrap_or_default()
            }
        }
    }

    /// Now, as checkpoints and manifests write it: RFC 3339, milliseconds, `Z`.
    pub fn rfc3339(&self) -> String {
        self.wall()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_following_clock_moves_with_paused_time() {
        let start = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = Clock::following(start);
        let opened = clock.now();
        assert_eq!(clock.wall(), start);
        tokio::time::sleep(Duration::from_secs(90)).await;
        assert_eq!(clock.rfc3339(), "2026-01-02T03:05:35.000Z");
        assert_eq!(clock.wall_at(opened), start);
    }

    #[tokio::test]
    async fn the_system_clock_reads_the_wall() {
        let clock = Clock::system();
        let before = Utc::now();
        let wall = clock.wall();
        assert!(
            wall >= before - chrono::Duration::milliseconds(5),
            "{wall} {before}"
        );
        assert!(wall <= Utc::now() + chrono::Duration::milliseconds(5));
        let earlier = clock.now() - Duration::from_secs(60);
        let diff = clock.wall() - clock.wall_at(earlier);
        assert!((diff.num_milliseconds() - 60_000).abs() < 50, "{diff}");
    }
}
