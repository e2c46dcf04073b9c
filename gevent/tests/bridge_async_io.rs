//! The hub as a reactor for futures: `futures_io::AsyncRead`/`AsyncWrite` on gevent's stream
//! types and the `poll_*` methods of `UdpSocket`, driven by `gevent::block_on`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use gevent::net::{TcpListener, TcpStream, UdpSocket, UnixStream};

#[test]
fn tcp_echo_of_a_megabyte_both_sides_async() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = gevent::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        gevent::block_on(async { futures::io::copy(&conn, &mut &conn).await.unwrap() })
    });
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let expected = data.clone();
    let echoed = gevent::block_on(async move {
        let s = TcpStream::connect(addr).unwrap();
        let write = async {
            (&s).write_all(&data).await.unwrap();
            AsyncWriteExt::close(&mut &s).await.unwrap(); // shutdown(Write): the copy ends
        };
        let read = async {
            let mut out = Vec::new();
            (&s).read_to_end(&mut out).await.unwrap();
            out
        };
        futures::join!(write, read).1
    });
    assert_eq!(echoed.len(), expected.len());
    assert!(echoed == expected);
    assert_eq!(server.get(), Ok(1_000_000));
}

#[test]
fn unix_stream_pair_async() {
    let (a, b) = UnixStream::pair().unwrap();
    let g = gevent::spawn(move || {
        gevent::block_on(async move {
            let mut buf = [0u8; 5];
            (&b).read_exact(&mut buf).await.unwrap();
            (&b).write_all(&buf.to_ascii_uppercase()).await.unwrap();
        })
    });
    let out = gevent::block_on(async move {
        gevent::sleep(Duration::from_millis(5)); // the reader parks first
        (&a).write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        (&a).read_exact(&mut buf).await.unwrap();
        buf
    });
    assert_eq!(&out, b"HELLO");
    g.join();
}

#[test]
fn a_parked_read_is_polled_again_only_when_data_comes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let writer = gevent::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        gevent::sleep(Duration::from_millis(30));
        std::io::Write::write_all(&mut conn, b"x").unwrap();
        conn
    });
    let polls = Rc::new(Cell::new(0));
    let p2 = polls.clone();
    let mut s = TcpStream::connect(addr).unwrap();
    let mut buf = [0u8; 4];
    let n = gevent::block_on(std::future::poll_fn(move |cx| {
        p2.set(p2.get() + 1);
        futures::io::AsyncRead::poll_read(std::pin::Pin::new(&mut s), cx, &mut buf)
    }))
    .unwrap();
    assert_eq!(n, 1);
    assert_eq!(polls.get(), 2, "one poll before the data, one after");
    writer.join();
}

#[test]
fn close_wakes_a_parked_future_with_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let s = Rc::new(TcpStream::connect(addr).unwrap());
    let (_peer, _) = listener.accept().unwrap();
    let s2 = s.clone();
    let reader = gevent::spawn(move || {
        gevent::block_on(async move {
            let mut buf = [0u8; 4];
            (&*s2).read(&mut buf).await
        })
    });
    gevent::sleep(Duration::from_millis(10));
    assert!(!reader.ready());
    s.close();
    reader.join();
    let err = reader.take_value().unwrap().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotConnected);
}

#[test]
fn udp_poll_methods() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let a_addr = a.local_addr().unwrap();
    let b_addr = b.local_addr().unwrap();
    let sender = gevent::spawn(move || {
        gevent::sleep(Duration::from_millis(10));
        let n = gevent::block_on(std::future::poll_fn(|cx| {
            b.poll_send_to(cx, b"ping", a_addr)
        }));
        (n.unwrap(), b) // kept open: a closed peer would make a's next recv ConnectionRefused
    });
    let mut buf = [0u8; 16];
    let (n, from) =
        gevent::block_on(std::future::poll_fn(|cx| a.poll_recv_from(cx, &mut buf))).unwrap();
    assert_eq!((&buf[..n], from), (&b"ping"[..], b_addr));
    sender.join();
    let (sent, _b) = sender.take_value().unwrap();
    assert_eq!(sent, 4);
    a.connect(b_addr).unwrap();
    assert_eq!(
        gevent::block_on(std::future::poll_fn(|cx| a.poll_send(cx, b"x"))).unwrap(),
        1
    );
    let r = std::future::Future::poll(
        std::pin::pin!(std::future::poll_fn(|cx| a.poll_recv(cx, &mut buf))),
        &mut std::task::Context::from_waker(std::task::Waker::noop()),
    );
    assert!(r.is_pending(), "{r:?}");
}
