//! A TCP proxy in front of the broker that tests can cut and restore.

use super::*;

/// A TCP proxy on 127.0.0.1 in front of a broker, on threads. [`Proxy::cut`] makes the network
/// swallow everything (connections stay open, nothing arrives either way, new connections are
/// accepted and hang), [`Proxy::heal`] drops every connection made before it, with whatever was
/// in flight, and forwards again: a network partition whose end breaks the connections, so no
/// request sent during it reaches the broker late.
pub struct Proxy {
    pub port: u16,
    state: std::sync::Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    cut: std::sync::atomic::AtomicBool,
    /// Bumped by `heal`: connections of an older epoch close.
    epoch: std::sync::atomic::AtomicU64,
    stop: std::sync::atomic::AtomicBool,
}

impl Proxy {
    pub(super) fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let state = std::sync::Arc::new(ProxyState::default());
        let accept_state = state.clone();
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering;
            while !accept_state.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let state = accept_state.clone();
                        std::thread::spawn(move || proxy_connection(client, upstream, state));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => return,
                }
            }
        });
        Proxy { port, state }
    }

    /// Starts the partition.
    pub fn cut(&self) {
        self.state
            .cut
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Ends the partition, breaking every connection that existed during it.
    pub fn heal(&self) {
        use std::sync::atomic::Ordering;
        self.state.epoch.fetch_add(1, Ordering::SeqCst);
        self.state.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        self.state.stop.store(true, Ordering::Relaxed);
        self.state.epoch.fetch_add(1, Ordering::SeqCst);
    }
}

fn proxy_connection(client: TcpStream, upstream: u16, state: std::sync::Arc<ProxyState>) {
    use std::sync::atomic::Ordering;
    let epoch = state.epoch.load(Ordering::SeqCst);
    // A connection made during a partition waits for its end, which closes it.
    while state.cut.load(Ordering::SeqCst) {
        if state.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let pumps = [
        (client.try_clone().unwrap(), server.try_clone().unwrap()),
        (server, client),
    ];
    for (from, to) in pumps {
        let state = state.clone();
        std::thread::spawn(move || pump(from, to, epoch, &state));
    }
}

/// Copies `from` to `to` until either side closes or the connection's epoch ends.
fn pump(mut from: TcpStream, mut to: TcpStream, epoch: u64, state: &ProxyState) {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    from.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if state.epoch.load(Ordering::SeqCst) != epoch {
            break;
        }
        if state.cut.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                // Read just as the partition began: it is lost with the connection.
                if state.cut.load(Ordering::SeqCst) {
                    while state.epoch.load(Ordering::SeqCst) == epoch {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    break;
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}
