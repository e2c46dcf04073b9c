//! [`StreamServer`] and [`DatagramServer`]: a handler per connection (or datagram), each in its own
//! greenlet (gevent's `gevent.server`).
//!
//! # Ground rules
//! - One accept loop per server, in its own greenlet ([`StreamServer::start`]) or in the caller's
//!   ([`StreamServer::serve_forever`]). Each accepted connection is handed to the handler in a new
//!   greenlet; a handler that panics is reported (`<Greenlet-N> failed with ...`) and the server goes on.
//! - With a [`Pool`] ([`StreamServer::with_pool`], gevent's `spawn=Pool(n)`; or
//!   [`StreamServer::max_connections`], a pool of its own) handlers are spawned in the pool, and the
//!   loop waits for a free slot before it accepts: while the pool is full, connections wait in the
//!   kernel's backlog. A pool may be shared with other work; [`StreamServer::stop`] kills only the
//!   server's own handlers.
//! - Accept errors never end the loop. Running out of descriptors or memory (`EMFILE`, `ENFILE`,
//!   `ENOBUFS`, `ENOMEM`) is logged once on stderr (at most once per 10 s; episodes in between are
//!   counted in the next report) and backed off: 10 ms, doubling up to 1 s, retried without waiting
//!   for readiness (the edge was consumed), until an accept succeeds.
//!   Errors about one aborted connection are skipped; anything else is logged and retried after 10 ms.
//! - The listening socket's accept queue holds [`DEFAULT_BACKLOG`](crate::net::DEFAULT_BACKLOG)
//!   connections ([`StreamServer::backlog`] to change it). Connections are kept open as long as
//!   their handler likes, unless [`StreamServer::idle_timeout`] is set: then a connection whose
//!   read or write waits on the peer that long is closed.
//! - [`StreamServer::stop_accepting`] pauses the loop (the listening socket stays open and the
//!   kernel queues new connections) until [`StreamServer::start_accepting`];
//!   [`StreamServer::started`] is true from `start` to `stop`, paused or not.
//! - [`StreamServer::stop`] stops accepting at once (the listening socket is closed), lets the running
//!   handlers finish until the timeout, then kills the rest and waits for them to die.
//! - On every core: [`StreamServer::bind_workers`] starts N hubs ([`crate::hubs`]), each with its own
//!   `StreamServer` on its own listening socket, all bound to one address with `SO_REUSEPORT`: the
//!   kernel spreads connections across them, and a connection stays on the hub that accepted it.
//!   [`MultiServer::stop`] stops them all at once, gracefully.
//!
//! # From `gevent.server`
//! | gevent | here |
//! |---|---|
//! | `StreamServer((host, port), handle)` | [`StreamServer::bind`]`(addr, handle)`, or [`StreamServer::new`] on a listener |
//! | `spawn=Pool(n)` / `spawn=n` | [`StreamServer::with_pool`] / [`StreamServer::max_connections`] |
//! | `backlog=n` | [`StreamServer::backlog`] |
//! | `start()`, `serve_forever()`, `stop(timeout)` | [`StreamServer::start`], [`StreamServer::serve_forever`], [`StreamServer::stop`] |
//! | `stop_accepting()`, `start_accepting()`, `started` | [`StreamServer::stop_accepting`], [`StreamServer::start_accepting`], [`StreamServer::started`] |
//! | `server.address` | [`StreamServer::local_addr`] |
//! | `DatagramServer(addr, handle)` | [`DatagramServer::bind`] |
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
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::greenlet::Greenlet;
use crate::hubs::{Hubs, ShutdownReport, Spawner};
use crate::net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use crate::pool::Pool;

const BACKOFF_START: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Whether an accept error means the process or system ran out of a resource (back off and retry).
pub(crate) fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Whether an accept error concerns only one connection that went away (skip it at once).
pub(crate) fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    ) || matches!(e.raw_os_error(), Some(libc::EPROTO | libc::EPERM))
}

/// What a server's loop takes work from: a listening TCP socket (connections) or a UDP socket
/// (datagrams).
trait Source: 'static {
    /// One unit of work: a connection or a datagram, with the peer's address.
    type Item: 'static;
    /// The server's name in log lines.
    const NAME: &'static str;
    /// The operation, in log lines.
    const OP: &'static str;
    /// Waits for the next item; `scratch` is the loop's reusable buffer.
    fn next(&self, scratch: &mut Vec<u8>) -> io::Result<Self::Item>;
    fn close(&self);
    fn is_closed(&self) -> bool;
    /// Errors about one item only, skipped at once.
    fn skip(e: &io::Error) -> bool {
        is_per_connection(e)
    }
    /// Applies the server's idle timeout to a new item (connections only).
    fn set_idle(_item: &Self::Item, _idle: Option<Duration>) {}
}

impl Source for TcpListener {
    type Item = (TcpStream, SocketAddr);
    const NAME: &'static str = "StreamServer";
    const OP: &'static str = "accept";
    fn next(&self, _: &mut Vec<u8>) -> io::Result<Self::Item> {
        self.accept()
    }
    fn close(&self) {
        TcpListener::close(self);
    }
    fn is_closed(&self) -> bool {
        TcpListener::is_closed(self)
    }
    fn set_idle((conn, _): &Self::Item, idle: Option<Duration>) {
        if idle.is_some() {
            // Only `Some(ZERO)` can fail, and `StreamServer::idle_timeout` refuses it.
            let _ = conn.set_idle_timeout(idle);
        }
    }
}

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65535;

impl Source for UdpSocket {
    type Item = (Vec<u8>, SocketAddr);
    const NAME: &'static str = "DatagramServer";
    const OP: &'static str = "receive";
    fn next(&self, scratch: &mut Vec<u8>) -> io::Result<Self::Item> {
        scratch.resize(MAX_DATAGRAM, 0);
        let (n, peer) = self.recv_from(scratch)?;
        Ok((scratch[..n].to_vec(), peer))
    }
    fn close(&self) {
        UdpSocket::close(self);
    }
    fn is_closed(&self) -> bool {
        UdpSocket::is_closed(self)
    }
    /// Also ICMP errors from earlier sends (`ECONNREFUSED`) and the like.
    fn skip(e: &io::Error) -> bool {
        is_per_connection(e) || e.kind() == io::ErrorKind::ConnectionRefused
    }
}

/// What a server does with each item, in the item's own greenlet.
type Handler<S> = Rc<dyn Fn(<S as Source>::Item, &S)>;

/// The state behind every handle of one server.
struct Core<S: Source> {
    stopped: Cell<bool>,
    /// `start` was called (and `stop` not yet): gevent's `started`.
    started: Cell<bool>,
    /// Set by `stop`: what `serve_forever` waits for.
    done: crate::event::Event,
    /// Set on every connection accepted (see `StreamServer::idle_timeout`).
    idle: Cell<Option<Duration>>,
    /// # Invariant
    /// Set only before the loop starts (the builders assert it).
    pool: RefCell<Option<Pool>>,
    /// The server's running handlers, by id (a shared pool may hold other greenlets too).
    active: RefCell<BTreeMap<u64, Greenlet<()>>>,
    next_id: Cell<u64>,
    run_loop: RefCell<Option<Greenlet<()>>>,
    /// Taken (and so closed, once the loop is dead) by `stop`.
    socket: RefCell<Option<Rc<S>>>,
    addr: SocketAddr,
    handler: Handler<S>,
}

/// The machinery both servers share: handles to one [`Core`].
struct Server<S: Source> {
    core: Rc<Core<S>>,
}

impl<S: Source> Clone for Server<S> {
    fn clone(&self) -> Self {
        Server {
            core: self.core.clone(),
        }
    }
}

impl<S: Source> Server<S> {
    fn new(socket: S, addr: SocketAddr, handler: Handler<S>) -> Server<S> {
        Server {
            core: Rc::new(Core {
                stopped: Cell::new(false),
                started: Cell::new(false),
                done: crate::event::Event::new(),
                idle: Cell::new(None),
                pool: RefCell::new(None),
                active: RefCell::new(BTreeMap::new()),
                next_id: Cell::new(0),
                run_loop: RefCell::new(None),
                socket: RefCell::new(Some(Rc::new(socket))),
                addr,
                handler,
            }),
        }
    }

    fn set_pool(&self, pool: Pool, what: &str) {
        assert!(
            self.core.run_loop.borrow().is_none(),
            "{what} must be set before the server starts"
        );
        *self.core.pool.borrow_mut() = Some(pool);
    }

    fn pool(&self) -> Option<Pool> {
        self.core.pool.borrow().clone()
    }

    fn connections(&self) -> usize {
        self.core.active.borrow().len()
    }

    fn is_stopped(&self) -> bool {
        self.core.stopped.get()
    }

    fn start(&self) {
        if self.core.stopped.get() {
            return;
        }
        self.core.started.set(true);
        self.start_accepting();
    }

    fn started(&self) -> bool {
        self.core.started.get()
    }

    /// Spawns the loop unless it runs (or the server stopped).
    fn start_accepting(&self) {
        if self.core.run_loop.borrow().is_some() || self.core.stopped.get() {
            return;
        }
        let me = self.clone();
        let g = crate::spawn(move || me.run());
        *self.core.run_loop.borrow_mut() = Some(g);
    }

    /// Kills the loop (waiting for it to die), leaving the socket open.
    fn stop_accepting(&self) {
        let run_loop = self.core.run_loop.borrow_mut().take();
        if let Some(g) = run_loop {
            if !is_current(&g) {
                g.kill();
            }
        }
    }

    fn is_accepting(&self) -> bool {
        self.core
            .run_loop
            .borrow()
            .as_ref()
            .is_some_and(|g| !g.ready())
    }

    fn serve_forever(&self) {
        self.start();
        // Until `stop`, or until nothing is left that could call it (accepting paused and no
        // other greenlet, timer or I/O: the hub reports that the wait can never end).
        while !self.core.stopped.get() && self.core.done.wait_deadline(None).is_ok() {}
    }

    /// Waits while the pool is full. Returns false if the server stopped.
    fn wait_for_slot(&self) -> bool {
        if let Some(pool) = self.pool() {
            pool.wait_available();
        }
        !self.core.stopped.get()
    }

    /// Runs `f` in a new greenlet (in the pool, if any) counted in `active`.
    fn spawn_handler(&self, f: impl FnOnce() + 'static) {
        let id = self.core.next_id.get();
        self.core.next_id.set(id + 1);
        /// Unregisters the handler however it ends (returned, panicked, killed, killed before start).
        struct Done<S: Source>(Rc<Core<S>>, u64);
        impl<S: Source> Drop for Done<S> {
            fn drop(&mut self) {
                self.0.active.borrow_mut().remove(&self.1);
            }
        }
        let done = Done(self.core.clone(), id);
        let run = move || {
            let _done = done;
            f();
        };
        let g = match self.pool() {
            Some(pool) => pool.spawn(run),
            None => crate::spawn(run),
        };
        if !g.ready() {
            self.core.active.borrow_mut().insert(id, g);
        }
    }

    /// The loop: wait for a slot, take the next item, hand it to a handler greenlet; back off on
    /// resource exhaustion.
    fn run(&self) {
        let Some(socket) = self.core.socket.borrow().clone() else {
            return;
        };
        let mut scratch = Vec::new();
        let mut backoff = Backoff::new();
        while self.wait_for_slot() {
            match socket.next(&mut scratch) {
                Ok(item) => {
                    backoff.succeeded(S::NAME);
                    S::set_idle(&item, self.core.idle.get());
                    let h = self.core.handler.clone();
                    let s = socket.clone();
                    self.spawn_handler(move || h(item, &s));
                }
                Err(_) if self.core.stopped.get() || socket.is_closed() => break,
                Err(e) if is_resource_exhaustion(&e) => {
                    let d = backoff.failed(S::NAME, S::OP, self.core.addr, &e);
                    crate::sleep(d);
                }
                // Parked at a fork, in the child: wait again (a pre-fork server's children serve).
                Err(e) if S::skip(&e) || crate::io::is_forked(&e) => {}
                Err(e) => {
                    eprintln!(
                        "gevent: {} on {}: {} failed: {e}",
                        S::NAME,
                        self.core.addr,
                        S::OP
                    );
                    crate::sleep(BACKOFF_START);
                }
            }
        }
    }

    fn stop(&self, timeout: Duration) {
        if let Some(s) = self.core.socket.borrow().as_ref() {
            s.close();
        }
        self.core.stopped.set(true);
        self.core.started.set(false);
        self.core.done.set();
        let run_loop = self.core.run_loop.borrow_mut().take();
        if let Some(g) = run_loop {
            if !g.ready() && !is_current(&g) {
                g.kill();
            }
        }
        let handlers: Vec<Greenlet<()>> = self
            .core
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
        // The loop is dead, so this is the last handle but the handlers': the fd closes with them.
        self.core.socket.borrow_mut().take();
    }
}

/// Whether `g` is the greenlet running now (a handler stopping its own server).
pub(crate) fn is_current<T>(g: &Greenlet<T>) -> bool {
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

    fn failed(&mut self, name: &str, op: &str, addr: SocketAddr, e: &io::Error) -> Duration {
        let d = match self.delay {
            None => {
                if self.last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                    let earlier = match self.suppressed {
                        0 => String::new(),
                        n => format!(" ({n} more episodes since the last report)"),
                    };
                    eprintln!(
                        "gevent: {name} on {addr}: {op} failed: {e}; backing off \
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

/// A TCP server that runs `handler(conn, peer)` for every connection in its own greenlet
/// (gevent's `StreamServer`). See the [module docs](self) for the rules.
///
/// Cloning gives another handle to the same server. Dropping the handles does not stop a started
/// server (its accept loop keeps it alive, as in gevent); call [`StreamServer::stop`].
#[derive(Clone)]
pub struct StreamServer {
    inner: Server<TcpListener>,
}

impl fmt::Debug for StreamServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "StreamServer({}, {} connections{})",
            self.local_addr(),
            self.connections(),
            if self.is_stopped() { ", stopped" } else { "" }
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
            inner: Server::new(
                listener,
                addr,
                Rc::new(move |(conn, peer), _| handler(conn, peer)),
            ),
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

    /// Runs the handlers in `pool` (gevent's `StreamServer(.., spawn=pool)`): while it is full the
    /// server does not accept, and connections wait in the kernel's backlog. The pool may be shared
    /// with other servers or work, limiting all of them together. Call before starting.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use gevent::pool::Pool;
    /// use gevent::server::StreamServer;
    ///
    /// let pool = Pool::new(100);
    /// let server = StreamServer::bind("127.0.0.1:0", |_conn, _peer| {})
    ///     .unwrap()
    ///     .with_pool(pool.clone());
    /// server.start();
    /// let _c = gevent::net::TcpStream::connect(server.local_addr()).unwrap();
    /// server.stop(Duration::from_secs(1));
    /// ```
    ///
    /// # Panics
    /// If the server was already started.
    pub fn with_pool(self, pool: Pool) -> StreamServer {
        self.inner.set_pool(pool, "with_pool");
        self
    }

    /// Limits the handlers running at once to `n` (at least 1): the same as
    /// [`with_pool`](StreamServer::with_pool)`(Pool::new(n))`. Call before starting.
    ///
    /// # Panics
    /// If the server was already started.
    pub fn max_connections(self, n: usize) -> StreamServer {
        self.inner.set_pool(Pool::new(n.max(1)), "max_connections");
        self
    }

    /// Sets the listening socket's accept queue to `n` connections (gevent's `backlog`;
    /// [`TcpListener::listen`]): while every handler slot is taken, or between two accepts, up to
    /// `n` connections wait in the kernel (capped at `net.core.somaxconn`). The default is
    /// [`DEFAULT_BACKLOG`](crate::net::DEFAULT_BACKLOG) (1024) for a server made by
    /// [`StreamServer::bind`]; [`StreamServer::new`] keeps the listener's own. May be called at any
    /// time; it applies to connections that arrive afterwards.
    ///
    /// # Examples
    /// ```
    /// use gevent::server::StreamServer;
    /// let server = StreamServer::bind("127.0.0.1:0", |_conn, _peer| {})
    ///     .unwrap()
    ///     .backlog(4096)
    ///     .unwrap();
    /// # drop(server);
    /// ```
    ///
    /// # Errors
    /// `NotConnected` once the server is stopped; as `listen(2)`.
    pub fn backlog(self, n: u32) -> io::Result<StreamServer> {
        match self.inner.core.socket.borrow().as_ref() {
            Some(l) => l.listen(n)?,
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the server was stopped",
                ))
            }
        }
        Ok(self)
    }

    /// Closes idle connections: every connection accepted from now on gets
    /// [`TcpStream::set_idle_timeout`]`(Some(d))`, so a read that gets nothing, or a write that
    /// can send nothing, for `d` closes it (the peer sees EOF) and fails with `TimedOut`, which
    /// ends a handler that stops on errors and frees its fd. Without it (the default), a peer
    /// that connects and stays silent holds a handler and an fd for as long as it likes: 20,000
    /// of them hold 20,000 fds. A handler may change it on its connection.
    ///
    /// # Examples
    /// ```
    /// use std::io::Read;
    /// use std::time::{Duration, Instant};
    /// use gevent::server::StreamServer;
    ///
    /// let server = StreamServer::bind("127.0.0.1:0", |mut conn, _| {
    ///     let mut buf = [0; 64];
    ///     while let Ok(1..) = conn.read(&mut buf) {}
    /// })
    /// .unwrap()
    /// .idle_timeout(Duration::from_millis(50));
    /// server.start();
    /// let t = Instant::now();
    /// let mut silent = gevent::net::TcpStream::connect(server.local_addr()).unwrap();
    /// assert_eq!(silent.read(&mut [0; 8]).unwrap(), 0); // closed by the server
    /// assert!(t.elapsed() >= Duration::from_millis(50));
    /// server.stop(Duration::from_secs(1));
    /// ```
    ///
    /// # Panics
    /// If `d` is zero.
    pub fn idle_timeout(self, d: Duration) -> StreamServer {
        assert!(
            !d.is_zero(),
            "StreamServer::idle_timeout must be more than zero"
        );
        self.inner.core.idle.set(Some(d));
        self
    }

    /// The pool the handlers run in, if any.
    pub fn pool(&self) -> Option<Pool> {
        self.inner.pool()
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.core.addr
    }

    /// How many handlers are running.
    pub fn connections(&self) -> usize {
        self.inner.connections()
    }

    /// Whether [`StreamServer::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.is_stopped()
    }

    /// Starts the accept loop in a new greenlet and returns. Starting twice does nothing, nor does
    /// starting a stopped server; after [`StreamServer::stop_accepting`] it accepts again.
    pub fn start(&self) {
        self.inner.start();
    }

    /// Whether the server was started and not stopped (gevent's `started`): true from
    /// [`start`](StreamServer::start) (or [`serve_forever`](StreamServer::serve_forever)) until
    /// [`stop`](StreamServer::stop), also while accepting is paused.
    pub fn started(&self) -> bool {
        self.inner.started()
    }

    /// Pauses accepting (gevent's `stop_accepting`): the accept loop ends, the listening socket
    /// stays open, so clients still connect and wait in the kernel's backlog (until it is full)
    /// for [`start_accepting`](StreamServer::start_accepting). Running handlers go on. Does
    /// nothing if the server is not accepting.
    ///
    /// # Cancel safety
    /// Waits (briefly) for the loop greenlet to die; a kill landing here unwinds out of it and
    /// the loop still dies. No connection is lost: one the loop had not taken stays queued.
    pub fn stop_accepting(&self) {
        self.inner.stop_accepting();
    }

    /// Resumes accepting after [`stop_accepting`](StreamServer::stop_accepting) (gevent's
    /// `start_accepting`); the connections that queued meanwhile are served first. Does nothing
    /// while accepting or after [`stop`](StreamServer::stop); on a server never started, it
    /// starts it (as [`start`](StreamServer::start)).
    pub fn start_accepting(&self) {
        self.inner.start();
    }

    /// Whether the accept loop runs (started, not paused, not stopped).
    pub fn is_accepting(&self) -> bool {
        self.inner.is_accepting()
    }

    /// Starts (if needed) and waits until the server is stopped (gevent's `serve_forever`);
    /// [`stop_accepting`](StreamServer::stop_accepting) does not end the wait.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here unwinds out of the wait; the server keeps running.
    pub fn serve_forever(&self) {
        self.inner.serve_forever();
    }

    /// Stops accepting at once (closing the listening socket), lets running handlers finish for up
    /// to `timeout`, then kills the rest and waits until they are dead. May be called from a handler
    /// (that handler is neither waited for nor killed).
    ///
    /// # Cancel safety
    /// A kill landing here unwinds out of it; accepting has stopped, handlers may still run.
    pub fn stop(&self, timeout: Duration) {
        self.inner.stop(timeout);
    }

    /// Serves `addr` on `workers` hubs, one thread each: the same `handler` for every connection,
    /// whichever hub accepts it. See [`StreamServer::bind_workers_with`], which this calls with a
    /// plain server per hub.
    ///
    /// # Examples
    /// ```
    /// use std::io::{Read, Write};
    /// use std::time::Duration;
    /// use gevent::server::StreamServer;
    ///
    /// let server = StreamServer::bind_workers("127.0.0.1:0", 2, |mut conn, _peer| {
    ///     // Which hub (and so which thread) serves this connection.
    ///     let hub = gevent::hubs::current_index().unwrap() as u8;
    ///     let _ = conn.write_all(&[hub]);
    /// })
    /// .unwrap();
    /// let mut c = std::net::TcpStream::connect(server.local_addr()).unwrap();
    /// let mut hub = [0u8];
    /// c.read_exact(&mut hub).unwrap();
    /// assert!(hub[0] < 2);
    /// let report = server.stop(Duration::from_secs(1));
    /// assert_eq!(report.total_alive(), 0);
    /// ```
    ///
    /// # Errors
    /// As [`StreamServer::bind_workers_with`].
    ///
    /// # Cancel safety
    /// As [`StreamServer::bind_workers_with`].
    pub fn bind_workers<A: ToSocketAddrs>(
        addr: A,
        workers: usize,
        handler: impl Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
    ) -> io::Result<MultiServer> {
        let handler = Arc::new(handler);
        StreamServer::bind_workers_with(addr, workers, move |_, listener| {
            let h = handler.clone();
            StreamServer::new(listener, move |conn, peer| h(conn, peer))
        })
    }

    /// Serves `addr` on `workers` hubs ([`Hubs`]), one thread each, every hub with its own
    /// listening socket and accept loop: `make(i, listener)` runs on hub `i` and returns the server
    /// for it (usually `StreamServer::new(listener, handler)`, with any of the builders: a pool,
    /// an idle timeout), which is then started there. `make` runs once per hub, so the handler
    /// it builds need not be `Send`: per-hub state (an `Rc` cache, a connection pool of that hub)
    /// goes in there.
    ///
    /// All the sockets are bound here, before anything starts, with `SO_REUSEADDR` and
    /// `SO_REUSEPORT`: the first to `addr` (a port of 0 picks a free one), the others to the address
    /// it got. The kernel spreads incoming connections across them (Linux: by a hash of each
    /// connection's addresses, so a client's connections may land on any hub); a connection is
    /// served start to end by the hub that accepted it. Another process of the same user binding
    /// the same port with `SO_REUSEPORT` would share the connections (that is the kernel's rule).
    ///
    /// # Errors
    /// `InvalidInput` if `workers` is 0; binding (`AddrInUse`, ...); starting a thread; what `make`
    /// returns, or a panic in it (as `Other`). Whatever was started is stopped again.
    ///
    /// # Cancel safety
    /// In a greenlet, resolving a host name and waiting for the hubs to be ready park it; a kill
    /// or Timeout landing there unwinds out of it and stops the hubs started so far.
    pub fn bind_workers_with<A, F>(addr: A, workers: usize, make: F) -> io::Result<MultiServer>
    where
        A: ToSocketAddrs,
        F: Fn(usize, TcpListener) -> io::Result<StreamServer> + Send + Sync + 'static,
    {
        start_workers(
            addr,
            workers,
            crate::net::DEFAULT_BACKLOG,
            "StreamServer",
            make,
        )
    }
}

/// A server that one hub of a [`MultiServer`] runs: started on its hub, stopped there (gracefully,
/// within a timeout). [`StreamServer`] and `http::Server` are.
pub(crate) trait HubServer: 'static {
    /// Starts serving (the accept loop's greenlet).
    fn start_serving(&self);
    /// Stops as the server's own `stop(timeout)`.
    fn stop_serving(self, timeout: Duration);
}

impl HubServer for StreamServer {
    fn start_serving(&self) {
        self.start();
    }
    fn stop_serving(self, timeout: Duration) {
        self.stop(timeout);
    }
}

/// What [`StreamServer::bind_workers_with`] and `http::Server::bind_workers_with` share: binds
/// `workers` `SO_REUSEPORT` listeners (the first to `addr`, the others to the address it got),
/// starts a hub per listener, and there `make(i, listener)`'s server; `what` names the server
/// kind in errors and panics.
pub(crate) fn start_workers<A, S, F>(
    addr: A,
    workers: usize,
    backlog: u32,
    what: &'static str,
    make: F,
) -> io::Result<MultiServer>
where
    A: ToSocketAddrs,
    S: HubServer,
    F: Fn(usize, TcpListener) -> io::Result<S> + Send + Sync + 'static,
{
    if workers == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what}::bind_workers: at least one worker is needed"),
        ));
    }
    let first = crate::net::each_addr(&addr, |a| crate::net::bind_reuseport(a, backlog))?;
    let local = first.local_addr()?;
    let mut listeners = vec![Mutex::new(Some(first))];
    for _ in 1..workers {
        let l = crate::net::bind_reuseport(local, backlog)?;
        listeners.push(Mutex::new(Some(l)));
    }
    let listeners = Arc::new(listeners);
    let hubs = Hubs::start(workers)?;
    let id = NEXT_GROUP.fetch_add(1, Ordering::Relaxed);
    let tasks = hubs.spawn_each(move |i| -> io::Result<()> {
        let l = listeners[i]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| io::Error::other("the listener was taken already"))?;
        let server = make(i, TcpListener::from_std(l)?)?;
        server.start_serving();
        let stop: StopServer = Box::new(move |t| server.stop_serving(t));
        WORKER_SERVERS.with(|s| s.borrow_mut().insert(id, stop));
        Ok(())
    });
    let server = MultiServer {
        hubs: Some(hubs),
        id,
        addr: local,
        what,
    };
    for t in tasks {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e), // `server` drops: every hub stops
            Err(e) => return Err(io::Error::other(e.to_string())),
        }
    }
    Ok(server)
}

/// Identifies a [`MultiServer`] in [`WORKER_SERVERS`].
static NEXT_GROUP: AtomicU64 = AtomicU64::new(1);

/// Stops one hub's server of a [`MultiServer`] (its `stop(timeout)`), run on that hub.
type StopServer = Box<dyn FnOnce(Duration)>;

thread_local! {
    /// On a hub of a [`MultiServer`]: how to stop its server there, by the group's id.
    static WORKER_SERVERS: RefCell<std::collections::HashMap<u64, StopServer>> =
        RefCell::new(std::collections::HashMap::new());
}

/// A server on each of N hubs, all on one address ([`StreamServer::bind_workers`], and
/// `http::Server::bind_workers`, whose `http::MultiServer` is this type). Owns its hubs;
/// `Send + Sync`. Dropping it stops it with no grace period.
pub struct MultiServer {
    hubs: Option<Hubs>,
    id: u64,
    addr: SocketAddr,
    /// The kind of server on each hub (`StreamServer`, `http::Server`), for `Debug` and panics.
    what: &'static str,
}

impl fmt::Debug for MultiServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MultiServer({} x {}, {})",
            self.workers(),
            self.what,
            self.addr
        )
    }
}

impl MultiServer {
    /// The address every worker listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many hubs serve it.
    pub fn workers(&self) -> usize {
        self.hubs.as_ref().map_or(0, Hubs::len)
    }

    /// Hands other work to the server's hubs (from any thread).
    ///
    /// # Panics
    /// Never while the server is not stopped.
    pub fn spawner(&self) -> Spawner {
        self.hubs
            .as_ref()
            .expect("a MultiServer has its hubs until it is stopped")
            .spawner()
    }

    /// Stops every worker at once, each as its server's own `stop(timeout)` ([`StreamServer::stop`]:
    /// stop accepting and close the socket, let handlers finish for up to `timeout`, then kill the
    /// rest; `http::Server::stop` also closes idle keep-alive connections at once), then shuts the
    /// hubs down ([`Hubs::shutdown`], no further grace) and joins their threads. The report counts,
    /// per hub, the greenlets still alive after the servers stopped (other work on these hubs).
    ///
    /// Blocks the calling thread, or parks the calling greenlet while the servers stop.
    ///
    /// # Panics
    /// When called on one of the server's own hubs.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing in it unwinds out of it and drops the server, which stops it with
    /// no grace period.
    pub fn stop(mut self, timeout: Duration) -> ShutdownReport {
        self.stop_inner(timeout)
    }

    fn stop_inner(&mut self, timeout: Duration) -> ShutdownReport {
        let Some(hubs) = self.hubs.take() else {
            return ShutdownReport::default();
        };
        assert!(
            !hubs.on_own_thread(),
            "MultiServer::stop ({}) was called on one of its own hubs",
            self.what
        );
        let id = self.id;
        let tasks = hubs.spawn_each(move |_| {
            let stop = WORKER_SERVERS.with(|s| s.borrow_mut().remove(&id));
            if let Some(stop) = stop {
                stop(timeout);
            }
        });
        // `stop` ends within `timeout` plus the time killed handlers take to die; past that,
        // the shutdown kills what is left.
        let bound = timeout + Duration::from_secs(5);
        for t in tasks {
            let _ = t.join_timeout(bound);
        }
        hubs.shutdown(Duration::ZERO)
    }
}

impl Drop for MultiServer {
    fn drop(&mut self) {
        if self.hubs.as_ref().is_some_and(Hubs::on_own_thread) {
            // On one of its own hubs, which cannot wait for itself: the hubs stop (killing the
            // servers' greenlets), their threads are not joined.
            drop(self.hubs.take());
            return;
        }
        self.stop_inner(Duration::ZERO);
    }
}

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
    inner: Server<UdpSocket>,
}

impl fmt::Debug for DatagramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatagramServer({})", self.local_addr())
    }
}

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
            inner: Server::new(
                socket,
                addr,
                Rc::new(move |(data, peer), sock| handler(data, peer, sock)),
            ),
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

    /// Runs the handlers in `pool`; while it is full, datagrams wait in the socket's buffer.
    ///
    /// # Panics
    /// If the server was already started.
    pub fn with_pool(self, pool: Pool) -> DatagramServer {
        self.inner.set_pool(pool, "with_pool");
        self
    }

    /// Limits the handlers running at once to `n` (at least 1); further datagrams wait in the
    /// socket's buffer.
    ///
    /// # Panics
    /// If the server was already started.
    pub fn max_handlers(self, n: usize) -> DatagramServer {
        self.inner.set_pool(Pool::new(n.max(1)), "max_handlers");
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.core.addr
    }

    /// How many handlers are running.
    pub fn handlers(&self) -> usize {
        self.inner.connections()
    }

    /// Starts the receive loop in a new greenlet. Starting twice does nothing.
    pub fn start(&self) {
        self.inner.start();
    }

    /// As [`StreamServer::started`].
    pub fn started(&self) -> bool {
        self.inner.started()
    }

    /// Pauses receiving (datagrams wait in the socket's buffer); as
    /// [`StreamServer::stop_accepting`].
    ///
    /// # Cancel safety
    /// As [`StreamServer::stop_accepting`].
    pub fn stop_accepting(&self) {
        self.inner.stop_accepting();
    }

    /// Resumes receiving; as [`StreamServer::start_accepting`].
    pub fn start_accepting(&self) {
        self.inner.start();
    }

    /// Whether the receive loop runs.
    pub fn is_accepting(&self) -> bool {
        self.inner.is_accepting()
    }

    /// Starts (if needed) and waits until stopped.
    ///
    /// # Cancel safety
    /// A kill or Timeout unwinds out of the wait; the server keeps running.
    pub fn serve_forever(&self) {
        self.inner.serve_forever();
    }

    /// Stops receiving, lets handlers finish until `timeout`, kills the rest.
    ///
    /// # Cancel safety
    /// As [`StreamServer::stop`].
    pub fn stop(&self, timeout: Duration) {
        self.inner.stop(timeout);
    }
}
