//! hyper 1 on gevent (cargo feature `hyper`): `hyper::rt::{Executor, Timer}` for greenlets and the
//! hub's timers; `hyper::rt::{Read, Write}` are implemented by [`net`](crate::net)'s stream types
//! ([`TcpStream`](crate::net::TcpStream), [`UnixStream`](crate::net::UnixStream)). hyper's client and
//! server connections then run on gevent sockets with no tokio at all: drive them with
//! [`block_on`](super::block_on), a greenlet per connection.
//!
//! # Examples
//! A server connection and a client on one hub:
//! ```
//! use gevent::bridge::hyper::{GeventExecutor, GeventTimer};
//! use gevent::net::{TcpListener, TcpStream};
//! use http_body_util::{BodyExt, Full};
//! use hyper::body::Bytes;
//!
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! let server = gevent::spawn(move || {
//!     let (conn, _) = listener.accept().unwrap();
//!     let service = hyper::service::service_fn(|_req| async {
//!         Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from("hello"))))
//!     });
//!     gevent::block_on(
//!         hyper::server::conn::http1::Builder::new()
//!             .timer(GeventTimer)
//!             .serve_connection(conn, service),
//!     )
//!     .unwrap();
//! });
//! let body = gevent::block_on(async move {
//!     let io = TcpStream::connect(addr).unwrap();
//!     let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
//!     hyper::rt::Executor::execute(&GeventExecutor, conn);
//!     let req = hyper::Request::get("/").body(http_body_util::Empty::<Bytes>::new()).unwrap();
//!     let resp = send.send_request(req).await.unwrap();
//!     resp.into_body().collect().await.unwrap().to_bytes()
//! });
//! assert_eq!(&body[..], b"hello");
//! server.join();
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::hub::{get_hub, TimerId};

/// `hyper::rt::Executor`: each future hyper hands over (an HTTP/2 stream, a client connection
/// task) runs in a greenlet of its own on the current thread's hub, polled by
/// [`block_on`](super::block_on).
#[derive(Clone, Copy, Debug, Default)]
pub struct GeventExecutor;

impl<F> ::hyper::rt::Executor<F> for GeventExecutor
where
    F: Future + 'static,
{
    fn execute(&self, fut: F) {
        crate::spawn_raw(move || {
            super::block_on(fut);
        });
    }
}

/// `hyper::rt::Timer` on the current thread's hub timers.
#[derive(Clone, Copy, Debug, Default)]
pub struct GeventTimer;

impl ::hyper::rt::Timer for GeventTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn ::hyper::rt::Sleep>> {
        Box::pin(Sleep::until(Instant::now() + duration))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn ::hyper::rt::Sleep>> {
        Box::pin(Sleep::until(deadline))
    }
}

/// A future that completes at a deadline, on a hub timer armed at its first poll (on the polling
/// thread's hub). `Send + Sync` as hyper asks; polled from another thread than the one that armed
/// the timer it arms none there and only checks the clock when polled.
#[derive(Debug)]
pub struct Sleep {
    deadline: Instant,
    shared: Arc<SleepShared>,
    /// The armed timer and the thread whose hub holds it.
    timer: Option<(TimerId, usize)>,
}

#[derive(Debug, Default)]
struct SleepShared {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Sleep {
    /// A sleep until `deadline`.
    pub fn until(deadline: Instant) -> Sleep {
        Sleep {
            deadline,
            shared: Arc::default(),
            timer: None,
        }
    }

    /// Its deadline.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.shared.fired.load(Ordering::Acquire) || Instant::now() >= this.deadline {
            return Poll::Ready(());
        }
        {
            let mut w = this.shared.waker.lock().unwrap_or_else(|e| e.into_inner());
            match &*w {
                Some(old) if old.will_wake(cx.waker()) => {}
                _ => *w = Some(cx.waker().clone()),
            }
        }
        if this.timer.is_none() {
            if let Some(thread) = super::thread_token() {
                let shared = this.shared.clone();
                let id = get_hub().add_timer(this.deadline, move || {
                    shared.fired.store(true, Ordering::Release);
                    let w = shared
                        .waker
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .take();
                    if let Some(w) = w {
                        w.wake();
                    }
                });
                this.timer = Some((id, thread));
            }
        }
        Poll::Pending
    }
}

impl ::hyper::rt::Sleep for Sleep {}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some((id, thread)) = self.timer {
            if super::thread_token() == Some(thread) {
                if let Some(hub) = crate::hub::try_hub() {
                    hub.cancel_timer(id);
                }
            }
        }
    }
}
