//! A kill or Timeout landing while `gevent::block_on` is parked drops the future: its destructors
//! run and it leaks no fd. One test in this binary, so counting the process's fds is exact.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::oneshot;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Sets its flag when dropped.
struct Dropped(Rc<Cell<bool>>);
impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// A future that owns a connected socket pair and a guard, then waits forever on a read and on a
/// channel whose sender is kept elsewhere (so the waker escaped: the hub counts it as pending).
async fn hold_sockets(flag: Rc<Cell<bool>>, rx: oneshot::Receiver<()>) {
    use futures::io::AsyncReadExt;
    let _guard = Dropped(flag);
    let l = gevent::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = gevent::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (_s, _) = l.accept().unwrap();
    let mut buf = [0u8; 8];
    let _ = futures::join!(c.read(&mut buf), rx);
    unreachable!("nothing ever arrives");
}

#[test]
fn kill_and_timeout_drop_the_future() {
    // Warm up what is opened once: the hub's poller and eventfd (and with feature `tokio`, the
    // shared runtime's, started by the first block_on).
    gevent::sleep(Duration::from_millis(1));
    gevent::block_on(async {});
    let before = open_fds();

    // Kill.
    let (tx, rx) = oneshot::channel::<()>();
    let flag = Rc::new(Cell::new(false));
    let f2 = flag.clone();
    let g = gevent::spawn(move || gevent::block_on(hold_sockets(f2, rx)));
    gevent::sleep(Duration::from_millis(20));
    assert!(!g.ready() && !flag.get());
    assert_eq!(
        open_fds(),
        before + 3,
        "listener, client and server sockets"
    );
    g.kill();
    assert!(flag.get(), "the future's destructors ran");
    assert_eq!(g.get(), Err(gevent::GetError::Killed));
    gevent::sleep(Duration::from_millis(1));
    assert_eq!(open_fds(), before, "no fd leaked by the kill");
    drop(tx);

    // Timeout, in the main greenlet.
    let (tx, rx) = oneshot::channel::<()>();
    let flag = Rc::new(Cell::new(false));
    let f2 = flag.clone();
    let r = gevent::with_timeout(Duration::from_millis(30), || {
        gevent::block_on(hold_sockets(f2, rx))
    });
    assert!(r.is_err());
    assert!(flag.get());
    gevent::sleep(Duration::from_millis(1));
    assert_eq!(open_fds(), before, "no fd leaked by the timeout");
    drop(tx);

    // The greenlet goes on normally after a caught timeout: block_on works again.
    assert_eq!(gevent::block_on(async { 1 }), 1);
}
