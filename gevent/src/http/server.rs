//! [`Server`]: the accept loop, the connection registry and the graceful stop.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::conn;
use super::types::{Config, ConnCtx, Handler, Phase, Transport};
use super::{Body, Request, Response, ResponseBody};
use crate::greenlet::Greenlet;
use crate::net::{TcpListener, TcpStream, ToSocketAddrs};

/// The listen backlog of [`Server::bind`] (as Go's, which takes `net.core.somaxconn`).
pub const BACKLOG: i32 = 4096;

/// Makes a transport out of an accepted TCP connection (e.g. a TLS handshake); runs in the
/// connection's greenlet, under [`Config::header_timeout`].
type Wrap = Rc<dyn Fn(TcpStream) -> io::Result<Box<dyn Transport>>>;

/// One connection in the registry.
struct Entry {
    greenlet: Greenlet<()>,
    phase: Rc<Cell<Phase>>,
}

struct Core {
    listener: RefCell<Option<Rc<TcpListener>>>,
    addr: SocketAddr,
    handler: Handler,
    config: RefCell<Rc<Config>>,
    wrap: RefCell<Option<Wrap>>,
    stopping: Rc<Cell<bool>>,
    conns: RefCell<BTreeMap<u64, Entry>>,
    next_id: Cell<u64>,
    accept_loop: RefCell<Option<Greenlet<()>>>,
}

/// An HTTP/1.1 server: an accept loop in its own greenlet and a greenlet per connection.
///
/// Cloning gives another handle to the same server. Dropping the handles does not stop a started
/// server; call [`Server::stop`].
#[derive(Clone)]
pub struct Server {
    core: Rc<Core>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "http::Server({}, {} connections{})",
            self.core.addr,
            self.connections(),
            if self.core.stopping.get() {
                ", stopped"
            } else {
                ""
            }
        )
    }
}

impl Server {
    /// A server on an already bound listener.
    ///
    /// # Errors
    /// If the listener's address cannot be read.
    pub fn new(
        listener: TcpListener,
        handler: impl Fn(Request<Body>) -> Response<ResponseBody> + 'static,
    ) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        Ok(Server {
            core: Rc::new(Core {
                listener: RefCell::new(Some(Rc::new(listener))),
                addr,
                handler: Rc::new(handler),
                config: RefCell::new(Rc::new(Config::default())),
                wrap: RefCell::new(None),
                stopping: Rc::new(Cell::new(false)),
                conns: RefCell::new(BTreeMap::new()),
                next_id: Cell::new(0),
                accept_loop: RefCell::new(None),
            }),
        })
    }

    /// Binds `addr` and makes a server on it, with a listen backlog of [`BACKLOG`] (std's and
    /// mio's 128 overflows under a burst of connections, and each dropped SYN costs its client a
    /// second).
    ///
    /// # Errors
    /// As [`TcpListener::bind`] and `listen(2)`.
    pub fn bind<A: ToSocketAddrs>(
        addr: A,
        handler: impl Fn(Request<Body>) -> Response<ResponseBody> + 'static,
    ) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        // SAFETY: `listen` on a descriptor we own; calling it again on a listening socket only
        // changes its backlog (capped by the kernel at `net.core.somaxconn`).
        if unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Server::new(listener, handler)
    }

    /// Replaces the limits and timeouts (for connections accepted from now on).
    pub fn with_config(self, config: Config) -> Server {
        *self.core.config.borrow_mut() = Rc::new(config);
        self
    }

    /// Serves every accepted connection over what `wrap` makes of it (a TLS stream, say). `wrap`
    /// runs in the connection's greenlet, under the header timeout; an error closes the connection
    /// and is logged on stderr.
    pub fn with_transport(
        self,
        wrap: impl Fn(TcpStream) -> io::Result<Box<dyn Transport>> + 'static,
    ) -> Server {
        *self.core.wrap.borrow_mut() = Some(Rc::new(wrap));
        self
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.core.addr
    }

    /// How many connections are open.
    pub fn connections(&self) -> usize {
        self.core.conns.borrow().len()
    }

    /// Starts the accept loop in a new greenlet (a no-op if started or stopped).
    pub fn start(&self) {
        if self.core.accept_loop.borrow().is_some() || self.core.stopping.get() {
            return;
        }
        let me = self.clone();
        let g = crate::spawn(move || me.accept_loop());
        *self.core.accept_loop.borrow_mut() = Some(g);
    }

    /// Starts the server and waits until it is stopped.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here leaves the server running.
    pub fn serve_forever(&self) {
        self.start();
        let g = self.core.accept_loop.borrow().clone();
        if let Some(g) = g {
            g.join();
        }
    }

    /// Stops gracefully: stops accepting at once, closes connections that wait for a request,
    /// lets in-flight requests finish until `timeout` (their connections close after the
    /// response), then kills the rest and waits for them to die.
    ///
    /// # Cancel safety
    /// A kill or Timeout landing here leaves the remaining connections running; stop again.
    pub fn stop(&self, timeout: Duration) {
        let core = &self.core;
        core.stopping.set(true);
        if let Some(l) = core.listener.borrow_mut().take() {
            l.close();
        }
        if let Some(g) = core.accept_loop.borrow_mut().take() {
            if !g.ready() && !is_current(&g) {
                g.kill();
            }
        }
        let idle: Vec<Greenlet<()>> = core
            .conns
            .borrow()
            .values()
            .filter(|e| e.phase.get() == Phase::Idle && !is_current(&e.greenlet))
            .map(|e| e.greenlet.clone())
            .collect();
        crate::killall(&idle);
        let busy: Vec<Greenlet<()>> = core
            .conns
            .borrow()
            .values()
            .filter(|e| !is_current(&e.greenlet))
            .map(|e| e.greenlet.clone())
            .collect();
        if crate::joinall_timeout(&busy, timeout) < busy.len() {
            let left: Vec<Greenlet<()>> = busy.into_iter().filter(|g| !g.ready()).collect();
            crate::killall(&left);
        }
    }

    fn accept_loop(&self) {
        let Some(listener) = self.core.listener.borrow().clone() else {
            return;
        };
        let mut backoff = Duration::ZERO;
        let mut last_log: Option<Instant> = None;
        loop {
            match listener.accept() {
                Ok((tcp, peer)) => {
                    backoff = Duration::ZERO;
                    self.spawn_connection(tcp, peer);
                }
                Err(_) if self.core.stopping.get() || listener.is_closed() => return,
                Err(e) if is_resource_exhaustion(&e) => {
                    backoff =
                        (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                    if last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                        eprintln!(
                            "gevent: http::Server on {}: accept failed: {e}; backing off",
                            self.core.addr
                        );
                        last_log = Some(Instant::now());
                    }
                    crate::sleep(backoff);
                }
                Err(e) if is_per_connection(&e) => {}
                Err(e) => {
                    eprintln!(
                        "gevent: http::Server on {}: accept failed: {e}",
                        self.core.addr
                    );
                    crate::sleep(Duration::from_millis(10));
                }
            }
        }
    }

    fn spawn_connection(&self, tcp: TcpStream, peer: SocketAddr) {
        let id = self.core.next_id.get();
        self.core.next_id.set(id + 1);
        let phase = Rc::new(Cell::new(Phase::Idle));
        let name = Rc::new(RefCell::new(String::new()));
        /// Unregisters the connection however its greenlet ends.
        struct Done(Rc<Core>, u64);
        impl Drop for Done {
            fn drop(&mut self) {
                self.0.conns.borrow_mut().remove(&self.1);
            }
        }
        let done = Done(self.core.clone(), id);
        let ctx = ConnCtx {
            handler: self.core.handler.clone(),
            config: self.core.config.borrow().clone(),
            phase: phase.clone(),
            stopping: self.core.stopping.clone(),
            name: name.clone(),
            peer,
        };
        let wrap = self.core.wrap.borrow().clone();
        let g = Greenlet::new(move || {
            let _done = done;
            let _ = tcp.set_nodelay(true);
            let io: Box<dyn Transport> = match wrap {
                None => Box::new(tcp),
                Some(w) => match crate::with_timeout(ctx.config.header_timeout, || w(tcp)) {
                    Ok(Ok(io)) => io,
                    Ok(Err(e)) => {
                        eprintln!(
                            "<{}> {peer}: connection setup failed: {e}",
                            ctx.name.borrow()
                        );
                        return;
                    }
                    Err(_) => return,
                },
            };
            conn::serve(io, &ctx);
        });
        *name.borrow_mut() = g.name();
        self.core.conns.borrow_mut().insert(
            id,
            Entry {
                greenlet: g.clone(),
                phase,
            },
        );
        g.start();
    }
}

/// Serves HTTP/1.1 on one connection in the calling greenlet until it closes: the building block
/// of [`Server`], for connections made some other way.
///
/// # Cancel safety
/// A kill or Timeout landing here closes the connection (nothing more is sent) and unwinds on.
pub fn serve_connection(
    io: Box<dyn Transport>,
    peer: SocketAddr,
    config: Rc<Config>,
    handler: Handler,
) {
    let ctx = ConnCtx {
        handler,
        config,
        phase: Rc::new(Cell::new(Phase::Idle)),
        stopping: Rc::new(Cell::new(false)),
        name: Rc::new(RefCell::new(format!("http connection from {peer}"))),
        peer,
    };
    conn::serve(io, &ctx);
}

fn is_current(g: &Greenlet<()>) -> bool {
    g.raw().is_some_and(|r| r.is_current())
}

fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    ) || matches!(e.raw_os_error(), Some(libc::EPROTO | libc::EPERM))
}
