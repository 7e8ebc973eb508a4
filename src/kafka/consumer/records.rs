//! Records on their way to the workers: each polled record is copied into its partition's batch
//! (headers read through librdkafka's C API), batches go to the worker's channel or wait, and a
//! partition whose worker is behind, or whose records exceed the memory budget, is paused.

use super::*;

impl SourceContext {
    /// Moves polled inputs to their workers without waiting for any: a worker whose channel is
    /// full keeps the rest pending and its partition is paused until it took them all. While
    /// the memory budget is exhausted the consumer stops polling records (see
    /// [`HOLD_POLLING`]); when it stays exhausted longer, every partition of the topic is
    /// paused, until it recovered. Pausing only those that just received records would let the
    /// others deliver what librdkafka had already fetched for them, which at 256 partitions is
    /// the whole budget again.
    pub(super) fn dispatch(&self, consumer: &BaseConsumer<Self>) {
        let budget = &self.shared.budget;
        let (mut pause, mut resume) = (Vec::new(), Vec::new());
        {
            let mut state = self.state();
            for inputs in state.pending.values_mut() {
                for input in inputs {
                    if let Input::Records(batch, charge) = input {
                        charge.set(batch.footprint());
                    }
                }
            }
            if budget.exhausted() && state.exhausted_since.is_none() {
                state.exhausted_since = Some(std::time::Instant::now());
                debug!(topic = %self.opts.topic, used = budget.used(), limit = budget.data_limit(), "memory budget exhausted; polling held");
            }
            // Until it recovered, even if it is no longer exhausted: a hold that never ends
            // would stop polling for good.
            if state
                .exhausted_since
                .is_some_and(|since| since.elapsed() >= HOLD_POLLING)
            {
                let state = &mut *state;
                for &p in state.workers.keys() {
                    if state.held_back.insert(p) && !state.paused.contains(&p) {
                        pause.push(p);
                    }
                }
            }
            for (p, inputs) in std::mem::take(&mut state.pending) {
                // No worker: the partition was revoked or its worker ended (reaped below).
                let Some(tx) = state.workers.get(&p).and_then(|w| w.input.clone()) else {
                    continue;
                };
                let left = hand_over(&tx, inputs);
                if left.is_empty() {
                    if state.paused.remove(&p) && !state.held_back.contains(&p) {
                        resume.push(p);
                    }
                } else {
                    if left.len() > PENDING_BEFORE_PAUSE
                        && state.paused.insert(p)
                        && !state.held_back.contains(&p)
                    {
                        pause.push(p);
                    }
                    state.pending.insert(p, left);
                }
            }
            if state.exhausted_since.is_some() && budget.recovered() {
                state.exhausted_since = None;
                let held_back = std::mem::take(&mut state.held_back);
                resume.extend(held_back.into_iter().filter(|p| !state.paused.contains(p)));
                debug!(topic = %self.opts.topic, used = budget.used(), "memory budget recovered; polling and fetching go on");
            }
        }
        if !pause.is_empty() && budget.exhausted() {
            debug!(topic = %self.opts.topic, used = budget.used(), limit = budget.data_limit(), "memory budget exhausted; fetching paused");
        }
        self.set_paused(consumer, &pause, true);
        self.set_paused(consumer, &resume, false);
    }

    /// Pauses or resumes fetching `partitions` of this topic.
    pub(super) fn set_paused(
        &self,
        consumer: &BaseConsumer<Self>,
        partitions: &[i32],
        pause: bool,
    ) {
        if partitions.is_empty() {
            return;
        }
        let topic = &self.opts.topic;
        let mut tpl = TopicPartitionList::new();
        for &p in partitions {
            tpl.add_partition(topic, p);
        }
        let result = if pause {
            consumer.pause(&tpl)
        } else {
            consumer.resume(&tpl)
        };
        match result {
            Ok(()) if pause => {
                debug!(%topic, ?partitions, "fetching paused: the partition's worker is behind")
            }
            Ok(()) => debug!(%topic, ?partitions, "fetching resumed"),
            // Pending input stays in order either way; a failed pause only lets more of it
            // queue here, bounded by librdkafka's prefetch.
            Err(e) => {
                warn!(%topic, ?partitions, pause, error = %e, "cannot pause or resume fetching")
            }
        }
    }

    pub(super) fn push(&self, partition: i32, input: Input) {
        self.state()
            .pending
            .entry(partition)
            .or_default()
            .push(input);
    }

    /// Adds a record to its partition's last pending batch, or starts a batch.
    pub(super) fn push_message(&self, m: &BorrowedMessage<'_>) {
        let mut state = self.state();
        let queue = state.pending.entry(m.partition()).or_default();
        let batch = match queue.last_mut() {
            Some(Input::Records(batch, _))
                if batch.len() < BATCH && batch.data_len() < BATCH_BYTES =>
            {
                batch
            }
            _ => {
                let fresh = Input::Records(
                    self.shared.batches.take(),
                    Charge::new(&self.shared.budget, Use::Queued),
                );
                queue.push(fresh);
                match queue.last_mut() {
                    Some(Input::Records(batch, _)) => batch,
                    _ => return, // unreachable: pushed just above
                }
            }
        };
        batch.push(
            m.offset(),
            m.timestamp().to_millis(),
            m.key(),
            m.payload(),
            RawHeaders::of(m),
        );
    }
}

/// Sends `inputs` in order while `tx` has room; returns what did not fit (empty when all went,
/// or when the worker ended).
fn hand_over(tx: &mpsc::Sender<Input>, inputs: Vec<Input>) -> Vec<Input> {
    let mut inputs = inputs.into_iter();
    while let Some(input) = inputs.next() {
        match tx.try_send(input) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(input)) => {
                return std::iter::once(input).chain(inputs).collect();
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Vec::new(),
        }
    }
    Vec::new()
}

/// A record's headers, read through librdkafka's C API: rdkafka's safe accessor panics on a
/// header name that is not UTF-8, and a poisoned record must not take the consumer down.
pub(crate) struct RawHeaders<'a> {
    headers: *const rdkafka::bindings::rd_kafka_headers_t,
    next: usize,
    count: usize,
    message: std::marker::PhantomData<&'a BorrowedMessage<'a>>,
}

impl<'a> RawHeaders<'a> {
    pub(crate) fn of(m: &'a BorrowedMessage<'_>) -> RawHeaders<'a> {
        use rdkafka::bindings as rd;
        let mut headers: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
        // SAFETY: `m` borrows a live message; librdkafka owns the header list, which lives as
        // long as the message.
        let found = unsafe { rd::rd_kafka_message_headers(m.ptr(), &mut headers) }
            == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
            && !headers.is_null();
        RawHeaders {
            headers,
            next: 0,
            // SAFETY: a header list librdkafka returned.
            count: if found {
                unsafe { rd::rd_kafka_header_cnt(headers) }
            } else {
                0
            },
            message: std::marker::PhantomData,
        }
    }
}

impl<'a> Iterator for RawHeaders<'a> {
    /// A header's name and value (`None`: a header without a value).
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        use rdkafka::bindings as rd;
        while self.next < self.count {
            let i = self.next;
            self.next += 1;
            let mut name: *const std::ffi::c_char = std::ptr::null();
            let mut value: *const std::ffi::c_void = std::ptr::null();
            let mut size: usize = 0;
            // SAFETY: `i` is below the list's count; the pointers librdkafka returns stay valid
            // while the message lives ('a), and each is checked before use.
            unsafe {
                if rd::rd_kafka_header_get_all(self.headers, i, &mut name, &mut value, &mut size)
                    != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
                    || name.is_null()
                {
                    continue;
                }
                let name = std::ffi::CStr::from_ptr(name).to_bytes();
                let value = (!value.is_null())
                    .then(|| std::slice::from_raw_parts(value.cast::<u8>(), size));
                return Some((name, value));
            }
        }
        None
    }
}
