//! A topic's identity: Kafka's topic id (KIP-516), a UUID the broker gives a topic when it is
//! created. A topic deleted and re-created under the same name gets a new id, and its offsets
//! start over at 0, so an archive records the id beside its offsets and refuses to continue
//! onto another incarnation of the topic.
//!
//! rdkafka has no call for it: this asks librdkafka's DescribeTopics admin API (librdkafka 2.3
//! and later) through its C interface, on the client handle of a consumer that already exists.
//! Brokers that give no id (older than Kafka 2.8, or an endpoint that answers with the zero
//! UUID, as some Kafka-compatible services do) yield `None`: the archive then relies on the
//! offset checks alone (a checkpoint past the partition's end, offsets going backwards).

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};

/// How long to wait for the ids, at most: Kafka answers in milliseconds, and a cluster that
/// does not answer should not hold up each assignment.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// Set once a cluster left DescribeTopics unanswered: not asked again by this process.
static UNANSWERED: AtomicBool = AtomicBool::new(false);

/// Why the ids could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TopicIdError {
    #[error("describing topics timed out after {0:?}")]
    TimedOut(Duration),
    #[error("describing topics failed: {0}")]
    Failed(String),
}

/// Each topic's id in base64, as Kafka's tools print it (`kafka-topics.sh --describe`), or
/// `None` when the broker gives none. Blocks up to `timeout`: call it off the async threads.
pub fn topic_ids<C: ClientContext>(
    client: &Client<C>,
    topics: &[String],
    timeout: Duration,
) -> Result<HashMap<String, Option<String>>, TopicIdError> {
    let names: Vec<CString> = topics
        .iter()
        .map(|t| CString::new(t.as_str()))
        .collect::<Result<_, _>>()
        .map_err(|e| TopicIdError::Failed(e.to_string()))?;
    let mut pointers: Vec<*const std::os::raw::c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let timeout = timeout.min(TIMEOUT);
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: every pointer handed to librdkafka outlives the call that uses it (`names` and
    // `pointers` live to the end of this function; the collection, options, queue and event are
    // destroyed by their guards after their last use), the client handle is valid while
    // `client` is borrowed, and results are read only while their event is alive.
    unsafe {
        let rk = client.native_ptr();
        // DescribeTopics is sent to the controller. A cluster that names none, or does not
        // answer it (librdkafka's mock cluster), only lets it time out: it is asked once.
        if UNANSWERED.load(Ordering::Relaxed) || rd::rd_kafka_controllerid(rk, timeout_ms) < 0 {
            return Ok(topics.iter().map(|t| (t.clone(), None)).collect());
        }
        let collection = Guard(
            rd::rd_kafka_TopicCollection_of_topic_names(pointers.as_mut_ptr(), pointers.len()),
            rd::rd_kafka_TopicCollection_destroy,
        );
        let options = Guard(
            rd::rd_kafka_AdminOptions_new(
                rk,
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBETOPICS,
            ),
            rd::rd_kafka_AdminOptions_destroy,
        );
        let mut errstr = [0 as std::os::raw::c_char; 256];
        rd::rd_kafka_AdminOptions_set_request_timeout(
            options.0,
            timeout_ms,
            errstr.as_mut_ptr(),
            errstr.len(),
        );
        let queue = Guard(rd::rd_kafka_queue_new(rk), rd::rd_kafka_queue_destroy);
        rd::rd_kafka_DescribeTopics(rk, collection.0, options.0, queue.0);
        let event = rd::rd_kafka_queue_poll(queue.0, timeout_ms.saturating_add(1000));
        if event.is_null() {
            return Err(TopicIdError::TimedOut(timeout));
        }
        let event = Guard(event, rd::rd_kafka_event_destroy);
        if rd::rd_kafka_event_error(event.0) != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        {
            return Err(TopicIdError::Failed(text(rd::rd_kafka_event_error_string(
                event.0,
            ))));
        }
        let result = rd::rd_kafka_event_DescribeTopics_result(event.0);
        if result.is_null() {
            return Err(TopicIdError::Failed("no DescribeTopics result".into()));
        }
        let mut count = 0;
        let described = rd::rd_kafka_DescribeTopics_result_topics(result, &mut count);
        let mut ids = HashMap::new();
        for i in 0..count {
            let d = *described.add(i);
            let name = text(rd::rd_kafka_TopicDescription_name(d));
            let error = rd::rd_kafka_TopicDescription_error(d);
            if !error.is_null()
                && rd::rd_kafka_error_code(error)
                    != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
            {
                // A topic missing or not described: no id known (the run's own metadata checks
                // report a missing topic).
                ids.insert(name, None);
                continue;
            }
            let id = rd::rd_kafka_TopicDescription_topic_id(d);
            let zero = id.is_null()
                || (rd::rd_kafka_Uuid_most_significant_bits(id) == 0
                    && rd::rd_kafka_Uuid_least_significant_bits(id) == 0);
            let id = (!zero).then(|| text(rd::rd_kafka_Uuid_base64str(id)));
            ids.insert(name, id);
        }
        Ok(ids)
    }
}

/// A C string librdkafka owns, copied (empty for a null pointer).
///
/// # Safety
/// `p` is null or a valid NUL-terminated string.
unsafe fn text(p: *const std::os::raw::c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// Destroys a librdkafka object when dropped.
struct Guard<T>(*mut T, unsafe extern "C" fn(*mut T));

impl<T> Drop for Guard<T> {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from the matching constructor and is destroyed once.
            unsafe { (self.1)(self.0) }
        }
    }
}
