//! Thread-safety markers of every public type, checked at compile time.
//!
//! No upstream test file: gevent's objects belong to the hub of the thread that made them, and
//! using one from another thread is undefined there ("cannot switch to a different thread").
//! Here the rule is a type: everything that names a hub, a greenlet or a registered fd is
//! `!Send`/`!Sync`; what crosses threads on purpose (`HubHandle`, `ThreadPool`, `Monitor`) and the
//! error and report values (which travel as panics or results) are `Send + Sync`.
//!
//! Each `assert_not_impl!` is a compile-time check: if the type implemented the trait, the call
//! below would be ambiguous and this file would not compile.

use gevent::event::{AsyncResult, Event};
use gevent::hub::{Hub, TimerId};
use gevent::hubs::{Hubs, ShutdownReport, Spawner, Task, TaskError};
use gevent::io::{Interest, IoSource};
use gevent::local::Local;
use gevent::lock::{
    BoundedSemaphore, DummyGuard, DummySemaphore, NotOwner, OverRelease, RLock, Semaphore,
    SemaphoreGuard,
};
use gevent::monitor::{Monitor, Report};
use gevent::net::{
    ConcurrentObjectUseError, TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener,
    UnixStream,
};
use gevent::pool::{Group, Pool};
use gevent::queue::{
    Channel, GetTimeoutError, LifoQueue, PriorityQueue, PutError, PutTimeoutError, Queue, ShutDown,
    TaskDoneError, TryGetError, TryPutError,
};
use gevent::server::{DatagramServer, MultiServer, StreamServer};
use gevent::signal::SignalGuard;
use gevent::subprocess::{Child, ChildStdin, Command};
use gevent::threadpool::ThreadPool;
use gevent::{
    Failure, GetError, Greenlet, HubHandle, LinkId, LoopExit, Timeout, TimeoutError, Waiter,
};

/// Compiles only if `$t` does not implement `$tr` (the two blanket impls otherwise overlap for
/// type inference, making `_` ambiguous).
macro_rules! assert_not_impl {
    ($t:ty, $tr:path) => {{
        trait AmbiguousIfImpl<A> {
            fn some_item() {}
        }
        impl<T: ?Sized> AmbiguousIfImpl<()> for T {}
        #[allow(dead_code)]
        struct Invalid;
        impl<T: ?Sized + $tr> AmbiguousIfImpl<Invalid> for T {}
        let _ = <$t as AmbiguousIfImpl<_>>::some_item;
    }};
}

/// `$t` is neither `Send` nor `Sync`.
macro_rules! thread_bound {
    ($($t:ty),* $(,)?) => {{ $( assert_not_impl!($t, Send); assert_not_impl!($t, Sync); )* }};
}

fn send_sync<T: Send + Sync + 'static>() {}

#[test]
fn what_belongs_to_a_hub_stays_on_its_thread() {
    thread_bound!(
        Hub,
        Waiter,
        Greenlet<u32>,
        Event,
        AsyncResult<u32>,
        Queue<u32>,
        LifoQueue<u32>,
        PriorityQueue<u32>,
        Channel<u32>,
        Semaphore,
        SemaphoreGuard<'static>,
        BoundedSemaphore,
        RLock,
        Local<u32>,
        Group,
        Pool,
        IoSource,
        TcpListener,
        TcpStream,
        UdpSocket,
        UnixListener,
        UnixStream,
        UnixDatagram,
        StreamServer,
        DatagramServer,
        Child,
        ChildStdin,
        SignalGuard,
        Timeout,
    );
}

#[test]
fn what_crosses_threads_on_purpose() {
    send_sync::<HubHandle>();
    send_sync::<ThreadPool>();
    send_sync::<Monitor>();
    // Many cores: a group of hubs, its spawner, a task's result handle, a server on every hub.
    send_sync::<Hubs>();
    send_sync::<Spawner>();
    send_sync::<Task<u32>>();
    send_sync::<MultiServer>();
    // A command is a description of a process to start: built anywhere, spawned on a hub.
    send_sync::<Command>();
    // `gevent::sync`: built to cross threads and hubs.
    send_sync::<gevent::sync::AsyncResult<Vec<u8>>>();
    send_sync::<gevent::sync::Event>();
    send_sync::<gevent::sync::Semaphore>();
    send_sync::<gevent::sync::Channel<Vec<u8>>>();
    send_sync::<gevent::sync::Mutex<Vec<u8>>>();
    send_sync::<gevent::sync::RwLock<Vec<u8>>>();
    send_sync::<gevent::sync::Condvar>();
    send_sync::<gevent::threadpool::JobHandle<Vec<u8>>>();
}

#[test]
fn errors_reports_and_plain_values_travel() {
    send_sync::<LoopExit>();
    send_sync::<ShutdownReport>();
    // It carries the panic payload (`Box<dyn Any + Send>`), as `std::thread::Result` does.
    fn send<T: Send>() {}
    send::<TaskError>();
    assert_not_impl!(TaskError, Sync);
    send_sync::<TimeoutError>();
    send_sync::<Failure>();
    send_sync::<GetError>();
    send_sync::<LinkId>();
    send_sync::<TimerId>();
    send_sync::<Report>();
    send_sync::<Interest>();
    send_sync::<ConcurrentObjectUseError>();
    send_sync::<OverRelease>();
    send_sync::<NotOwner>();
    send_sync::<DummySemaphore>();
    send_sync::<DummyGuard>();
    send_sync::<ShutDown>();
    send_sync::<PutError<u32>>();
    send_sync::<TryPutError<u32>>();
    send_sync::<PutTimeoutError<u32>>();
    send_sync::<TryGetError>();
    send_sync::<GetTimeoutError>();
    send_sync::<TaskDoneError>();
}
