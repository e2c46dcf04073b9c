//! [`StreamServer`] and [`DatagramServer`]: a handler per connection (or datagram), each in its own
//! greenlet (gevent's `gevent.server`).
//!
//! # Ground rules
//! - One accept loop per server, in its own greenlet ([`StreamServer::start`]) or in the caller's
//!   ([`StreamServer::serve_forever`]). Each accepted connection is handed to the handler in a new
//!   greenlet; a handler that panics is reported (`<Greenlet-N> failed with ...`) and the server goes on.
//! - With a connection limit ([`StreamServer::max_connections`]) the loop stops accepting while that
//!   many handlers run, and resumes (FIFO) when one finishes; connections wait in the kernel's backlog.
//!   (gevent spells this `spawn=Pool(n)`; this is the same counter, without needing a `Pool`.)
//! - Accept errors never end the loop. Running out of descriptors or memory (`EMFILE`, `ENFILE`,
//!   `ENOBUFS`, `ENOMEM`) is logged once on stderr (at most once per 10 s; episodes in between are
//!   counted in the next report) and backed off: 10 ms, doubling up to 1 s, retried without waiting
//!   for readiness (the edge was consumed), until an accept succeeds.
//!   Errors about one aborted connection are skipped; anything else is logged and retried after 10 ms.
//! - [`StreamServer::stop`] stops accepting at once (the listening socket is closed), lets the running
//!   handlers finish until the timeout, then kills the rest and waits for them to die.
//!
//! # Examples
//! ```
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! use gevent::server::StreamServer;
//!
//! let server = StreamServer::bind("127.0.0.1:0", |mut conn, _addr| {
//!     let mut buf = [0u8; 1024];
//!     while let Ok(n @ 1..) = conn.read(&mut buf) {
//!         let _ = conn.write_all(&buf[..n].to_ascii_uppercase());
//!     }
//! })
//! .unwrap();
//! server.start();
//! let mut c = gevent::net::TcpStream::connect(server.local_addr()).unwrap();
//! c.write_all(b"hello").unwrap();
//! let mut got = [0u8; 5];
//! c.read_exact(&mut got).unwrap();
//! assert_eq!(&got, b"HELLO");
//! drop(c);
//! server.stop(Duration::from_secs(1));
//! ```

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::greenlet::Greenlet;
use crate::hub::Waiter;
use crate::net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};

const BACKOFF_START: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Whether an accept error means the process or system ran out of a resource (back off and retry).
fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Whether an accept error concerns only one connection that went away (skip it at once).
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    ) || matches!(e.raw_os_error(), Some(libc::EPROTO | libc::EPERM))
}

/// What both servers share: the handler greenlets, the limit and the loop.
struct Core {
    name: &'static str,
    stopped: Cell<bool>,
    max: Option<usize>,
    active: RefCell<BTreeMap<u64, Greenlet<()>>>,
    next_id: Cell<u64>,
    /// The accept loop, parked until a handler slot frees (at most one entry in practice).
    slot_waiters: RefCell<VecDeque<Rc<Waiter>>>,
    run_loop: RefCell<Option<Greenlet<()>>>,
}

impl Core {
    fn new(name: &'static str, max: Option<usize>) -> Core {
        Core {
            name,
            stopped: Cell::new(false),
            max,
            active: RefCell::new(BTreeMap::new()),
            next_id: Cell::new(0),
            slot_waiters: RefCell::new(VecDeque::new()),
            run_loop: RefCell::new(None),
        }
    }

    /// Waits while the limit is reached. Returns false if the server stopped meanwhile.
    fn wait_for_slot(&self) -> bool {
        while let Some(max) = self.max {
            if self.stopped.get() {
                return false;
            }
            if self.active.borrow().len() < max {
                break;
            }
            let w = Waiter::new();
            self.slot_waiters.borrow_mut().push_back(w.clone());
            let r = w.wait();
            self.slot_waiters
                .borrow_mut()
                .retain(|x| !Rc::ptr_eq(x, &w));
            if r.is_err() {
                return false;
            }
        }
        !self.stopped.get()
    }

    /// Runs `f` in a new greenlet counted in `active`.
    fn spawn_handler(self: &Rc<Self>, f: impl FnOnce() + 'static) {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        /// Unregisters the handler however it ends (returned, panicked, killed, killed before start).
        struct Done(Rc<Core>, u64);
        impl Drop for Done {
            fn drop(&mut self) {
                self.0.active.borrow_mut().remove(&self.1);
                let w = self.0.slot_waiters.borrow_mut().pop_front();
                if let Some(w) = w {
                    w.wake();
                }
            }
        }
        let done = Done(self.clone(), id);
        let g = crate::spawn(move || {
            let _done = done;
            f();
        });
        self.active.borrow_mut().insert(id, g);
    }

    fn stop(&self, timeout: Duration) {
        self.stopped.set(true);
        for w in self.slot_waiters.borrow_mut().drain(..) {
            w.wake();
        }
        let run_loop = self.run_loop.borrow_mut().take();
        if let Some(g) = run_loop {
            if !g.ready() && !is_current(&g) {
                g.kill();
            }
        }
        let handlers: Vec<Greenlet<()>> = self
            .active
            .borrow()
            .values()
            .filter(|g| !is_current(g))
            .cloned()
            .collect();
        let finished = crate::joinall_timeout(&handlers, timeout);
        if finished < handlers.len() {
            let left: Vec<Greenlet<()>> = handlers.into_iter().filter(|g| !g.ready()).collect();
            crate::killall(&left);
        }
    }
}

fn is_current<T>(g: &Greenlet<T>) -> bool {
    g.raw().is_some_and(|r| r.is_current())
}

/// How often an exhaustion episode may be logged (later episodes within this window are counted and
/// mentioned in the next log line instead).
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Tracks accept failures: logs the first of an episode (at most once per [`LOG_EVERY`]), computes
/// the back-off.
struct Backoff {
    delay: Option<Duration>,
    last_log: Option<Instant>,
    logged_this_episode: bool,
    suppressed: u64,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            delay: None,
            last_log: None,
            logged_this_episode: false,
            suppressed: 0,
        }
    }

    fn failed(&mut self, name: &str, addr: SocketAddr, e: &io::Error) -> Duration {
        let d = match self.delay {
            None => {
                if self.last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                    let earlier = match self.suppressed {
                        0 => String::new(),
                        n => format!(" ({n} more episodes since the last report)"),
                    };
                    eprintln!(
                        "gevent: {name} on {addr}: accept failed: {e}; backing off \
                         (10 ms doubling to 1 s){earlier}"
                    );
                    self.last_log = Some(Instant::now());
                    self.logged_this_episode = true;
                    self.suppressed = 0;
                } else {
                    self.suppressed += 1;
                }
                BACKOFF_START
            }
            Some(d) => (d * 2).min(BACKOFF_MAX),
        };
        self.delay = Some(d);
        d
    }

    fn succeeded(&mut self, name: &str) {
        if self.delay.take().is_some() && std::mem::take(&mut self.logged_this_episode) {
            eprintln!("gevent: {name}: accepting again");
        }
    }
}

type StreamHandler = Rc<dyn Fn(TcpStream, SocketAddr)>;

/// A TCP server that runs `handler(conn, peer)` for every connection in its own greenlet
/// (gevent's `StreamServer`). See the [module docs](self) for the rules.
///
/// Cloning gives another handle to the same server. Dropping the handles does not stop a started
/// server (its accept loop keeps it alive, as in gevent); call [`StreamServer::stop`].
#[derive(Clone)]
pub struct StreamServer {
    core: Rc<Core>,
    listener: Rc<RefCell<Option<Rc<TcpListener>>>>,
    addr: SocketAddr,
    handler: StreamHandler,
}

impl fmt::Debug for StreamServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "StreamServer({}, {} connections{})",
            self.addr,
            self.connections(),
            if self.core.stopped.get() {
                ", stopped"
            } else {
                ""
            }
        )
    }
}

impl StreamServer {
    /// A server on an already bound listener.
    ///
    /// # Errors
    /// If the listener's address cannot be read.
    pub fn new(
        listener: TcpListener,
        handler: impl Fn(TcpStream, SocketAddr) + 'static,
    ) -> io::Result<StreamServer> {
        let addr = listener.local_addr()?;
        Ok(StreamServer {
            core: Rc::new(Core::new("StreamServer", None)),
            listener: Rc::new(RefCell::new(Some(Rc::new(listener)))),
            addr,
            handler: Rc::new(handler),
        })
    }

    /// Binds `addr` and makes a server (not started yet).
    ///
    /// # Errors
    /// As [`TcpListener::bind`].
    pub fn bind<A: ToSocketAddrs>(
        addr: A,
        handler: impl Fn(TcpStream, SocketAddr) + 'static,
    ) -> io::Result<StreamServer> {
        StreamServer::new(TcpListener::bind(addr)?, handler)
    }

    /// Limits the handlers running at once to `n` (at least 1); call before starting.
    ///
    /// # Panics
    /// If the server was already started.
    pub fn max_connections(self, n: usize) -> StreamServer {
        assert!(
            self.core.run_loop.borrow().is_none(),
            "max_connections must be set before the server starts"
        );
        StreamServer {
            core: Rc::new(Core::new("StreamServer", Some(n.max(1)))),
            ..self
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many handlers are running.
    pub fn connections(&self) -> usize {
        self.core.active.borrow().len()
    }

    /// Whether [`StreamServer::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.core.stopped.get()
    }

    /// Starts the accept loop in a new greenlet and returns. Starting twice does nothing.
    pub fn start(&self) {
        if self.core.run_loop.borrow().is_some() || self.core.stopped.get() {
            return;
        }
        let me = self.clone();
        let g = crate::spawn(move || me.accept_loop());
        *self.core.run_loop.borrow_mut() = Some(g);
    }

    /// Starts (if needed) and waits until the server is stopped (gevent's `serve_forever`).
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of the wait; the server keeps running.
    pub fn serve_forever(&self) {
        self.start();
        let g = self.core.run_loop.borrow().clone();
        if let Some(g) = g {
            g.join();
        }
    }

    /// Stops accepting at once (closing the listening socket), lets running handlers finish for up
    /// to `timeout`, then kills the rest and waits until they are dead. May be called from a handler
    /// (that handler is neither waited for nor killed).
    ///
    /// # Cancel safety
    /// A kill landing here unwinds out of it; accepting has stopped, handlers may still run.
    pub fn stop(&self, timeout: Duration) {
        if let Some(l) = self.listener.borrow().as_ref() {
            l.close();
        }
        self.core.stop(timeout);
        // The loop is dead, so this is the last handle: the fd is closed here.
        self.listener.borrow_mut().take();
    }

    fn accept_loop(&self) {
        let Some(listener) = self.listener.borrow().clone() else {
            return;
        };
        let mut backoff = Backoff::new();
        while self.core.wait_for_slot() {
            match listener.accept() {
                Ok((conn, peer)) => {
                    backoff.succeeded(self.core.name);
                    let h = self.handler.clone();
                    self.core.spawn_handler(move || h(conn, peer));
                }
                Err(_) if self.core.stopped.get() || listener.is_closed() => break,
                Err(e) if is_resource_exhaustion(&e) => {
                    let d = backoff.failed(self.core.name, self.addr, &e);
                    crate::sleep(d);
                }
                Err(e) if is_per_connection(&e) => {}
                Err(e) => {
                    eprintln!(
                        "gevent: {} on {}: accept failed: {e}",
                        self.core.name, self.addr
                    );
                    crate::sleep(BACKOFF_START);
                }
            }
        }
    }
}

type DatagramHandler = Rc<dyn Fn(Vec<u8>, SocketAddr, &UdpSocket)>;

/// A UDP server that runs `handler(data, peer, socket)` for every datagram in its own greenlet
/// (gevent's `DatagramServer`); reply with `socket.send_to(.., peer)`.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use gevent::server::DatagramServer;
///
/// let server = DatagramServer::bind("127.0.0.1:0", |data, peer, sock| {
///     let _ = sock.send_to(&data.to_ascii_uppercase(), peer);
/// })
/// .unwrap();
/// server.start();
/// let c = gevent::net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// c.send_to(b"ping", server.local_addr()).unwrap();
/// let mut buf = [0; 8];
/// let (n, _) = c.recv_from(&mut buf).unwrap();
/// assert_eq!(&buf[..n], b"PING");
/// server.stop(Duration::from_secs(1));
/// ```
#[derive(Clone)]
pub struct DatagramServer {
    core: Rc<Core>,
    socket: Rc<RefCell<Option<Rc<UdpSocket>>>>,
    addr: SocketAddr,
    handler: DatagramHandler,
}

impl fmt::Debug for DatagramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatagramServer({})", self.addr)
    }
}

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65535;

impl DatagramServer {
    /// A server on an already bound socket.
    ///
    /// # Errors
    /// If the socket's address cannot be read.
    pub fn new(
        socket: UdpSocket,
        handler: impl Fn(Vec<u8>, SocketAddr, &UdpSocket) + 'static,
    ) -> io::Result<DatagramServer> {
        let addr = socket.local_addr()?;
        Ok(DatagramServer {
            core: Rc::new(Core::new("DatagramServer", None)),
            socket: Rc::new(RefCell::new(Some(Rc::new(socket)))),
            addr,
            handler: Rc::new(handler),
        })
    }

    /// Binds `addr` and makes a server (not started yet).
    ///
    /// # Errors
    /// As [`UdpSocket::bind`].
    pub fn bind<A: ToSocketAddrs>(
        addr: A,
        handler: impl Fn(Vec<u8>, SocketAddr, &UdpSocket) + 'static,
    ) -> io::Result<DatagramServer> {
        DatagramServer::new(UdpSocket::bind(addr)?, handler)
    }

    /// Limits the handlers running at once to `n`; further datagrams wait in the socket's buffer.
    ///
    /// # Panics
    /// If the server was already started.
    pub fn max_handlers(self, n: usize) -> DatagramServer {
        assert!(
            self.core.run_loop.borrow().is_none(),
            "max_handlers must be set before the server starts"
        );
        DatagramServer {
            core: Rc::new(Core::new("DatagramServer", Some(n.max(1)))),
            ..self
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts the receive loop in a new greenlet. Starting twice does nothing.
    pub fn start(&self) {
        if self.core.run_loop.borrow().is_some() || self.core.stopped.get() {
            return;
        }
        let me = self.clone();
        let g = crate::spawn(move || me.recv_loop());
        *self.core.run_loop.borrow_mut() = Some(g);
    }

    /// Starts (if needed) and waits until stopped.
    ///
    /// # Cancel safety
    /// A kill or Timeout unwinds out of the wait; the server keeps running.
    pub fn serve_forever(&self) {
        self.start();
        let g = self.core.run_loop.borrow().clone();
        if let Some(g) = g {
            g.join();
        }
    }

    /// Stops receiving, lets handlers finish until `timeout`, kills the rest.
    ///
    /// # Cancel safety
    /// As [`StreamServer::stop`].
    pub fn stop(&self, timeout: Duration) {
        if let Some(s) = self.socket.borrow().as_ref() {
            s.close();
        }
        self.core.stop(timeout);
        self.socket.borrow_mut().take();
    }

    fn recv_loop(&self) {
        let Some(sock) = self.socket.borrow().clone() else {
            return;
        };
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut backoff = Backoff::new();
        while self.core.wait_for_slot() {
            match sock.recv_from(&mut buf) {
                Ok((n, peer)) => {
                    backoff.succeeded(self.core.name);
                    let data = buf[..n].to_vec();
                    let h = self.handler.clone();
                    let s = sock.clone();
                    self.core.spawn_handler(move || h(data, peer, &s));
                }
                Err(_) if self.core.stopped.get() || sock.is_closed() => break,
                Err(e) if is_resource_exhaustion(&e) => {
                    let d = backoff.failed(self.core.name, self.addr, &e);
                    crate::sleep(d);
                }
                // ICMP errors from earlier sends (ECONNREFUSED) and the like: skip.
                Err(e) if is_per_connection(&e) || e.kind() == io::ErrorKind::ConnectionRefused => {
                }
                Err(e) => {
                    eprintln!(
                        "gevent: {} on {}: receive failed: {e}",
                        self.core.name, self.addr
                    );
                    crate::sleep(BACKOFF_START);
                }
            }
        }
    }
}
