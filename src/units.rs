//! Units that validate on parse and print the way they are written: byte sizes (`300MiB`) and
//! durations (`5m`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A byte count that parses `300MiB`, `10MB`, `1GiB`, `4096B`. A number without a unit is
/// refused: `--window-size 1` meant one byte (a file per record) to nobody who wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid size {s:?}: use a number with a unit, like 300MiB, 10MB, 512KiB or 1GiB"
            )
        };
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| bad())?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" => {
                return Err(format!(
                    "{n} what? write {n}MiB, {n}KiB or {n}B: sizes need a unit (B, KB, KiB, MB, MiB, GB, GiB, TB, TiB)"
                ))
            }
            "b" => 1,
            "kb" => 1_000,
            "kib" => 1 << 10,
            "mb" => 1_000_000,
            "mib" => 1 << 20,
            "gb" => 1_000_000_000,
            "gib" => 1 << 30,
            "tb" => 1_000_000_000_000,
            "tib" => 1 << 40,
            _ => return Err(bad()),
        };
        n.checked_mul(mult).map(ByteSize).ok_or_else(bad)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        match n {
            _ if n >= 1 << 30 && n.is_multiple_of(1 << 30) => write!(f, "{}GiB", n >> 30),
            _ if n >= 1 << 20 && n.is_multiple_of(1 << 20) => write!(f, "{}MiB", n >> 20),
            _ if n >= 1 << 10 && n.is_multiple_of(1 << 10) => write!(f, "{}KiB", n >> 10),
            _ => write!(f, "{n}B"),
        }
    }
}

/// A duration that parses `5m`, `90s`, `1h30m`, `500ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid duration {s:?}: use a number with a unit, like 5m, 90s, 1h30m or 500ms"
            )
        };
        let mut rest = s.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        if rest.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "{rest} what? write {rest}s, {rest}m or {rest}ms: durations need a unit (ms, s, m, h)"
            ));
        }
        let mut total = Duration::ZERO;
        while !rest.is_empty() {
            let split = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            let n: u64 = rest[..split].parse().map_err(|_| bad())?;
            let unit_end = rest[split..]
                .find(|c: char| c.is_ascii_digit())
                .map_or(rest.len(), |i| split + i);
            let unit = match &rest[split..unit_end] {
                "ms" => Duration::from_millis(1),
                "s" => Duration::from_secs(1),
                "m" => Duration::from_secs(60),
                "h" => Duration::from_secs(3600),
                _ => return Err(bad()),
            };
            total += unit
                .checked_mul(u32::try_from(n).map_err(|_| bad())?)
                .ok_or_else(bad)?;
            rest = &rest[unit_end..];
        }
        Ok(HumanDuration(total))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) {
            write!(f, "{ms}ms")
        } else {
            write!(f, "{}s", ms / 1000)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!("300MiB".parse::<ByteSize>().unwrap().0, 300 << 20);
        assert_eq!("10MB".parse::<ByteSize>().unwrap().0, 10_000_000);
        assert_eq!("1gib".parse::<ByteSize>().unwrap().0, 1 << 30);
        assert_eq!("4096B".parse::<ByteSize>().unwrap().0, 4096);
        assert_eq!("100TiB".parse::<ByteSize>().unwrap().0, 100 << 40);
        // A number alone is refused with the fix, not taken as bytes.
        let err = "1".parse::<ByteSize>().unwrap_err();
        assert!(err.contains("1 what?") && err.contains("1MiB"), "{err}");
        let err = "300 Mbit".parse::<ByteSize>().unwrap_err();
        assert!(err.contains("300MiB"), "{err}");
        assert!("".parse::<ByteSize>().is_err());
        assert!("99999999999999GiB".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize(300 << 20).to_string(), "300MiB");
    }

    #[test]
    fn durations() {
        assert_eq!(
            "5m".parse::<HumanDuration>().unwrap().0,
            Duration::from_secs(300)
        );
        assert_eq!(
            "1h30m".parse::<HumanDuration>().unwrap().0,
            Duration::from_secs(5400)
        );
        assert_eq!(
            "500ms".parse::<HumanDuration>().unwrap().0,
            Duration::from_millis(500)
        );
        let err = "5 minutes".parse::<HumanDuration>().unwrap_err();
        assert!(err.contains("5m"), "{err}");
        let err = "5".parse::<HumanDuration>().unwrap_err();
        assert!(err.contains("5 what?") && err.contains("5s"), "{err}");
        assert!("m".parse::<HumanDuration>().is_err());
    }
}
