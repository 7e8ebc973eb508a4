//! Path naming: turns a window into its object name, deterministically.
//!
//! A name depends only on what a replay reproduces: the topic, the partition, the window's first
//! offset and the time of its first record (its Kafka timestamp; an empty window uses the time it
//! opened). A replay from a checkpoint therefore rewrites the same names, and two windows of one
//! partition never share a name because their first offsets differ. The first offset is the
//! `{Offset}` token, zero-padded to 20 digits like Kafka's own segment files; a template without
//! it gets `-{Offset}` appended to its last segment.
//!
//! Every name stays inside the output and in sight of readers: Spark, pyarrow and DuckDB skip
//! folders whose names start with `_` or `.` (and hubcap keeps its own state in `_` folders), and
//! object stores keep `.`/`..` as literal folders (`%2E%2E`). So a template's literal segments
//! may not be `.` or `..` nor start with `_` or `.` ([`PathTemplate::parse`]), `{Namespace}` may
//! not either ([`namespace_problem`]), and a topic whose name starts with `_` or `.` gets a
//! visible folder ([`topic_folder`]).

use std::borrow::Cow;

use chrono::{DateTime, Datelike, Timelike, Utc};

/// Capture's default name format.
pub const DEFAULT_TEMPLATE: &str =
    "{Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/{Second}";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("unknown token {{{token}}} in path template {template:?}; known tokens: {known}")]
    UnknownToken {
        token: String,
        template: String,
        known: &'static str,
    },
    #[error("unclosed '{{' in path template {template:?}; tokens look like {{Year}}")]
    Unclosed { template: String },
    #[error("path template {template:?} must contain {{{token}}}: without it two partitions or topics would write the same names")]
    Missing {
        token: &'static str,
        template: String,
    },
    #[error("path template {template:?} has an empty segment, or one that starts or ends with '/' ; write segments like {{EventHub}}/{{PartitionId}}")]
    EmptySegment { template: String },
    #[error("path template {template:?} has a segment {segment:?} that {problem}; {FIX}")]
    Segment {
        template: String,
        segment: String,
        problem: &'static str,
    },
}

/// How to write a segment readers see and that stays inside the output.
const FIX: &str = "write folders that start with a letter, a digit or a token, like {EventHub}/partition={PartitionId}";

/// Characters object stores (and `object_store`) percent-encode in a name: a name holding one is
/// stored under another name than the template says.
const ENCODED: &str = "\\{}^%`[]\"<>~#|*?";

/// The prefix of the folder of a topic whose name starts with `_` or `.`. `@` is not a character
/// of Kafka topic names (`[a-zA-Z0-9._-]`), so no other topic's folder can be the same: the
/// mapping is one-to-one, and [`topic_from_folder`] reverses it. It is kept by object stores as it
/// is, needs no quoting in a shell, and is not a Hive `key=value` folder.
pub const TOPIC_FOLDER_PREFIX: char = '@';

/// The folder (the `{EventHub}` of a name) of a topic: the topic itself, or `@` before it when it
/// starts with `_` or `.` (`_events` → `@_events`), which readers would skip. The one place this
/// is decided: `run`, `audit`, `repair`, `inspect` and Delta table paths all name files through
/// it.
pub fn topic_folder(topic: &str) -> Cow<'_, str> {
    if topic.starts_with(['_', '.']) {
        Cow::Owned(format!("{TOPIC_FOLDER_PREFIX}{topic}"))
    } else {
        Cow::Borrowed(topic)
    }
}

/// The topic a folder holds: the inverse of [`topic_folder`]; `None` for a folder it never
/// writes (`_x`, `@x`).
pub fn topic_from_folder(folder: &str) -> Option<&str> {
    match folder.strip_prefix(TOPIC_FOLDER_PREFIX) {
        Some(topic) if topic.starts_with(['_', '.']) => Some(topic),
        Some(_) => None,
        None if folder.is_empty() || folder.starts_with(['_', '.']) => None,
        None => Some(folder),
    }
}

/// Why literal text of a template cannot be part of a folder readers see inside the output;
/// `None` when it can. `whole`: it is a whole segment; `first`: it starts one.
fn segment_problem(literal: &str, whole: bool, first: bool) -> Option<&'static str> {
    if whole && (literal == "." || literal == "..") {
        Some("is a relative path ('.' or '..'), which would leave the output or be stored as a folder named %2E")
    } else if first && literal.starts_with(['_', '.']) {
        Some("starts with '_' or '.': Spark, pyarrow and DuckDB skip such folders, and hubcap keeps its own state in '_' folders")
    } else if literal
        .chars()
        .any(|c| c.is_control() || ENCODED.contains(c))
    {
        Some("holds a character object stores percent-encode (one of \\ { } ^ % ` [ ] \" < > ~ # | * ?)")
    } else {
        None
    }
}

/// Checks the literal text of a template (`--path-format`, `--table-path`): each segment, as
/// far as its literals say, is not `.` or `..`, does not start with `_` or `.`, and holds no
/// character a store would encode. Tokens are checked by their values.
pub fn check_segments(template: &str) -> Result<(), PathError> {
    for segment in template.split('/') {
        let mut rest = segment;
        let mut starts_segment = true;
        loop {
            let literal_end = rest.find('{').unwrap_or(rest.len());
            let literal = &rest[..literal_end];
            let whole = starts_segment && literal_end == rest.len();
            let problem = segment_problem(literal, whole, starts_segment);
            if let Some(problem) = problem {
                return Err(PathError::Segment {
                    template: template.to_string(),
                    segment: segment.to_string(),
                    problem,
                });
            }
            // Past the token: its value is checked where it is known.
            match rest[literal_end..].find('}') {
                Some(close) => {
                    rest = &rest[literal_end + close + 1..];
                    starts_segment = false;
                }
                None => break,
            }
        }
    }
    Ok(())
}

/// Why a value cannot be `{Namespace}`, a folder of every name: it must be one visible segment
/// (no `/`, not `.`/`..`, not starting with `_` or `.`) that stores keep as it is.
pub fn namespace_problem(namespace: &str) -> Option<&'static str> {
    if namespace.trim().is_empty() {
        Some("is empty")
    } else if namespace.contains('/') {
        Some("contains '/', which would add folders")
    } else {
        segment_problem(namespace, true, true)
    }
}

/// Whether a name relative to the output stays inside it: no empty, `.` or `..` segment, no
/// leading `/`, no `\\`. Every name a template renders is; manifests check their lines with it.
pub fn is_contained(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\\')
        && name
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

const KNOWN: &str =
    "{Namespace} {EventHub} {PartitionId} {Year} {Month} {Day} {Hour} {Minute} {Second} {Offset}";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Namespace,
    EventHub,
    PartitionId,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Offset,
}

impl Token {
    fn parse(name: &str) -> Option<Token> {
        Some(match name {
            "Namespace" => Token::Namespace,
            "EventHub" => Token::EventHub,
            "PartitionId" => Token::PartitionId,
            "Year" => Token::Year,
            "Month" => Token::Month,
            "Day" => Token::Day,
            "Hour" => Token::Hour,
            "Minute" => Token::Minute,
            "Second" => Token::Second,
            "Offset" => Token::Offset,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Token(Token),
}

/// A parsed, validated path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    pieces: Vec<Piece>,
    extension: &'static str,
}

/// What a window's name is made of.
#[derive(Debug, Clone)]
pub struct NameParts<'a> {
    pub namespace: &'a str,
    pub topic: &'a str,
    pub partition: i32,
    pub first_offset: i64,
    pub time: DateTime<Utc>,
}

impl PathTemplate {
    /// Parses `template`; `extension` (like `avro`) is appended after a dot.
    pub fn parse(template: &str, extension: &'static str) -> Result<Self, PathError> {
        let mut parsed = Self::parse_as_given(template, extension)?;
        if !parsed.pieces.contains(&Piece::Token(Token::Offset)) {
            parsed.pieces.push(Piece::Literal("-".into()));
            parsed.pieces.push(Piece::Token(Token::Offset));
        }
        Ok(parsed)
    }

    /// Parses `template` as Event Hubs Capture itself names its `.avro` files: as given, with
    /// no `-{Offset}` appended, since Capture's names carry no offset. Only for reading such
    /// names back ([`parse_capture_name`](Self::parse_capture_name)): without an offset, two windows
    /// opened in the same second would get one name, so hubcap never writes with it.
    pub fn parse_capture(template: &str) -> Result<Self, PathError> {
        Self::parse_as_given(template, "avro")
    }

    fn parse_as_given(template: &str, extension: &'static str) -> Result<Self, PathError> {
        let mut pieces = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Literal(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(PathError::Unclosed {
                    template: template.into(),
                });
            };
            let name = &rest[open + 1..open + close];
            let token = Token::parse(name).ok_or_else(|| PathError::UnknownToken {
                token: name.into(),
                template: template.into(),
                known: KNOWN,
            })?;
            pieces.push(Piece::Token(token));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Literal(rest.to_string()));
        }
        for (token, name) in [
            (Token::EventHub, "EventHub"),
            (Token::PartitionId, "PartitionId"),
        ] {
            if !pieces.contains(&Piece::Token(token)) {
                return Err(PathError::Missing {
                    token: name,
                    template: template.into(),
                });
            }
        }
        if template.starts_with('/') || template.ends_with('/') || template.contains("//") {
            return Err(PathError::EmptySegment {
                template: template.into(),
            });
        }
        check_segments(template)?;
        Ok(PathTemplate { pieces, extension })
    }

    /// The object name (relative to the output prefix) of a window.
    pub fn render(&self, p: &NameParts<'_>) -> String {
        use std::fmt::Write;
        let mut s = String::with_capacity(96);
        for piece in &self.pieces {
            // Writing to a String cannot fail.
            let _ = match piece {
                Piece::Literal(text) => write!(s, "{text}"),
                Piece::Token(Token::Namespace) => write!(s, "{}", p.namespace),
                Piece::Token(Token::EventHub) => write!(s, "{}", topic_folder(p.topic)),
                Piece::Token(Token::PartitionId) => write!(s, "{}", p.partition),
                Piece::Token(Token::Year) => write!(s, "{:04}", p.time.year()),
                Piece::Token(Token::Month) => write!(s, "{:02}", p.time.month()),
                Piece::Token(Token::Day) => write!(s, "{:02}", p.time.day()),
                Piece::Token(Token::Hour) => write!(s, "{:02}", p.time.hour()),
                Piece::Token(Token::Minute) => write!(s, "{:02}", p.time.minute()),
                Piece::Token(Token::Second) => write!(s, "{:02}", p.time.second()),
                Piece::Token(Token::Offset) => write!(s, "{:020}", p.first_offset),
            };
        }
        s.push('.');
        s.push_str(self.extension);
        // Parsing refused literal segments that could escape, and the tokens' values cannot
        // (a validated namespace, a topic's folder, digits).
        debug_assert!(is_contained(&s), "{s} leaves the output");
        s
    }

    /// Whether `{Namespace}` is part of the names.
    pub fn uses_namespace(&self) -> bool {
        self.pieces.contains(&Piece::Token(Token::Namespace))
    }
}

/// What a name without an offset (Event Hubs Capture's own) says about its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureName {
    pub topic: String,
    pub partition: i32,
    /// The digits of the time tokens, year to second (`20221209165012`), whatever order the
    /// template writes them in (Capture allows any): a partition's names sort by it in time
    /// order.
    pub time: String,
}

/// What an object name says about its file: the inverse of [`PathTemplate::render`] for the
/// parts that identify it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedName {
    pub topic: String,
    pub partition: i32,
    pub first_offset: i64,
}

impl PathTemplate {
    /// Reads the topic, partition and first offset back out of a name this template rendered
    /// (relative to the output prefix, with this template's extension); `None` when the name
    /// does not fit the template.
    ///
    /// Tokens match what `render` writes: a topic is its folder ([`topic_folder`]: Kafka's
    /// `[A-Za-z0-9._-]+`, `@` before one that starts with `_` or `.`), read back as the topic; a partition is
    /// digits, times are zero-padded digits and the offset is 20 digits; `{Namespace}` is any text
    /// without `/`. Variable-width tokens next to literals that could belong to them (a `-` in
    /// `{EventHub}-{PartitionId}`) are resolved by backtracking. Should a template still be
    /// ambiguous (`{Namespace}-{EventHub}` with dashes in both), the longest earlier token wins.
    pub fn parse_name(&self, name: &str) -> Option<ParsedName> {
        let found = self.match_name(name)?;
        let (topic, partition) = topic_and_partition(&found)?;
        Some(ParsedName {
            topic,
            partition,
            first_offset: found[Token::Offset as usize]?.parse().ok()?,
        })
    }

    /// Reads the topic, partition and time back out of a name without an offset, as Event
    /// Hubs Capture writes them ([`parse_capture`](Self::parse_capture)); `None` when the name
    /// does not fit. Tokens match as in [`parse_name`](Self::parse_name).
    pub fn parse_capture_name(&self, name: &str) -> Option<CaptureName> {
        let found = self.match_name(name)?;
        let (topic, partition) = topic_and_partition(&found)?;
        let time = [
            Token::Year,
            Token::Month,
            Token::Day,
            Token::Hour,
            Token::Minute,
            Token::Second,
        ]
        .iter()
        .filter_map(|&t| found[t as usize])
        .collect();
        Some(CaptureName {
            topic,
            partition,
            time,
        })
    }

    fn match_name<'a>(&self, name: &'a str) -> Option<Found<'a>> {
        let stem = name.strip_suffix(self.extension)?.strip_suffix('.')?;
        match_pieces(&self.pieces, stem, [None; TOKENS])
    }
}

fn topic_and_partition(found: &Found<'_>) -> Option<(String, i32)> {
    let topic = topic_from_folder(found[Token::EventHub as usize]?)?;
    let partition = found[Token::PartitionId as usize]?.parse().ok()?;
    Some((topic.to_string(), partition))
}

const TOKENS: usize = Token::Offset as usize + 1;

/// Token values found so far, by token; a token that occurs twice must match the same text.
type Found<'a> = [Option<&'a str>; TOKENS];

fn match_pieces<'a>(pieces: &[Piece], s: &'a str, found: Found<'a>) -> Option<Found<'a>> {
    let Some((piece, rest)) = pieces.split_first() else {
        return s.is_empty().then_some(found);
    };
    let token = match piece {
        Piece::Literal(text) => return match_pieces(rest, s.strip_prefix(text.as_str())?, found),
        Piece::Token(token) => *token,
    };
    if let Some(seen) = found[token as usize] {
        return match_pieces(rest, s.strip_prefix(seen)?, found);
    }
    // Every token's characters are a prefix-closed class, so the candidates are the prefixes of
    // the longest run of allowed characters, tried longest first.
    let run: usize = s
        .char_indices()
        .find(|&(_, c)| !token.allows(c))
        .map_or(s.len(), |(i, _)| i);
    let (min, max) = token.width();
    (min..=run.min(max))
        .rev()
        .filter(|&end| s.is_char_boundary(end))
        .find_map(|end| {
            // A topic's folder is one `topic_folder` writes (`@_x`, not `_x` nor `@x`).
            if token == Token::EventHub && topic_from_folder(&s[..end]).is_none() {
                return None;
            }
            let mut next = found;
            next[token as usize] = Some(&s[..end]);
            match_pieces(rest, &s[end..], next)
        })
}

impl Token {
    /// Whether `render` can write `c` for this token.
    fn allows(self, c: char) -> bool {
        match self {
            Token::Namespace => c != '/',
            Token::EventHub => {
                c.is_ascii_alphanumeric() || "._-".contains(c) || c == TOPIC_FOLDER_PREFIX
            }
            _ => c.is_ascii_digit(),
        }
    }

    /// The lengths `render` writes for this token, in bytes: (at least, at most).
    fn width(self) -> (usize, usize) {
        match self {
            Token::Namespace => (0, usize::MAX),
            Token::EventHub => (1, usize::MAX),
            // i32::MAX has 10 digits.
            Token::PartitionId => (1, 10),
            Token::Year => (4, 4),
            Token::Month | Token::Day | Token::Hour | Token::Minute | Token::Second => (2, 2),
            Token::Offset => (20, 20),
        }
    }
}

/// The time used for a name: the first record's timestamp, or the window's opening time when
/// the record has none (or one before 1970, which would not make a sensible folder).
pub fn name_time(record_ms: Option<i64>, opened: DateTime<Utc>) -> DateTime<Utc> {
    record_ms
        .filter(|ms| *ms >= 0)
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or(opened)
}

/// Where a run keeps its checkpoints, under `--output` unless `--checkpoints` is given.
pub const CHECKPOINTS_DIR: &str = "_checkpoints";
/// Where manifests go, under `--output`.
pub const MANIFESTS_DIR: &str = "_manifests";
/// Where `hubcap repair` moves duplicates and strays, under `--output`, each beside a note of
/// why (`NAME.why.json`). Readers and the audit skip `_` folders.
pub const QUARANTINE_DIR: &str = "_quarantine";

/// The first broker's host, without scheme, port or IPv6 brackets.
fn first_broker_host(brokers: &str) -> &str {
    let first = brokers.split(',').next().unwrap_or("").trim();
    let first = first.rsplit_once("://").map_or(first, |(_, rest)| rest);
    let host = match first.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => first,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The default `{Namespace}`: Capture uses the short namespace name, so take the first DNS label
/// of the first broker's host (`ns.servicebus.windows.net:9093` → `ns`); an IP address is kept whole.
pub fn namespace_from_brokers(brokers: &str) -> String {
    let host = first_broker_host(brokers);
    if host.parse::<std::net::IpAddr>().is_ok() {
        return host.replace(':', "-");
    }
    match host.split('.').next() {
        Some(label) if !label.is_empty() => label.to_string(),
        _ => "kafka".to_string(),
    }
}

/// The default fully qualified namespace of Azure SDK checkpoint blobs: the first broker's host
/// (`ns.servicebus.windows.net`), where `{Namespace}` keeps only its first label.
pub fn fully_qualified_namespace(brokers: &str) -> String {
    first_broker_host(brokers).to_string()
}

/// The blob name of a partition's Azure SDK checkpoint, relative to the container:
/// `{fully-qualified-namespace}/{event-hub}/{consumer-group}/checkpoint/{partition-id}`, the
/// namespace, hub and group lowercased as the .NET, Python and JS stores do.
pub fn sdk_checkpoint_blob(namespace: &str, hub: &str, group: &str, partition: i32) -> String {
    format!(
        "{}/{}/{}/checkpoint/{partition}",
        namespace.to_lowercase(),
        hub.to_lowercase(),
        group.to_lowercase()
    )
}

/// Why a name cannot be one segment of an SDK checkpoint blob name: the SDKs split the name on
/// `/` (Java requires exactly five segments).
pub fn sdk_segment_problem(value: &str) -> Option<&'static str> {
    if value.trim().is_empty() {
        Some("is empty")
    } else if value.contains('/') {
        Some("contains '/'")
    } else if value.chars().any(char::is_control) {
        Some("contains a control character")
    } else if value == "." || value == ".." {
        Some("is a relative path segment")
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
