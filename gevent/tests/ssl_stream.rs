//! `gevent::ssl` streams: client and server on one hub over loopback, with a CA made by rcgen.
//! Handshake (eager and lazy), SNI, ALPN, certificate checks, close_notify and truncation, timeouts,
//! and a peer that does not speak TLS.

mod ssl_common;

use std::io::{self, BufRead, Read, Write};
use std::time::{Duration, Instant};

use gevent::net::{TcpListener, TcpStream};
use gevent::ssl::{rustls, NotTlsError, TlsAcceptor, TlsStream};
use ssl_common::{fds_flat, serial, Pki};

/// Runs `server` on the one connection a fresh listener accepts, in its own greenlet; returns it and
/// a client TCP stream connected to it.
fn serve_one<T: 'static>(
    server: impl FnOnce(TcpStream) -> T + 'static,
) -> (gevent::Greenlet<T>, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let g = gevent::spawn(move || server(l.accept().unwrap().0));
    (g, TcpStream::connect(addr).unwrap())
}

/// Waits for the greenlet and takes its value (panics if it failed).
fn result<T>(g: &gevent::Greenlet<T>) -> T {
    g.join();
    g.take_value().expect("the server greenlet failed")
}

#[test]
fn handshake_sni_alpn_and_data_both_ways() {
    let _s = serial();
    let pki = Pki::new(&[]);
    fds_flat(|| {
        let acceptor = pki.acceptor().with_alpn(&[b"http/1.1", b"h2"]);
        let (server, tcp) = serve_one(move |tcp| {
            let mut tls = acceptor.accept(tcp).unwrap();
            let seen = (
                tls.server_name().map(str::to_owned),
                tls.alpn_protocol().map(<[u8]>::to_vec),
                tls.protocol_version(),
                tls.is_server(),
            );
            // Echo upper-cased until the client's close_notify.
            let mut buf = vec![0; 64 * 1024];
            let mut total = 0;
            loop {
                let n = tls.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                total += n;
                tls.write_all(&buf[..n].to_ascii_uppercase()).unwrap();
            }
            tls.shutdown().unwrap();
            (seen, total)
        });
        let connector = pki.connector().with_alpn(&[b"h2", b"http/1.1"]);
        let mut tls = connector.connect("localhost", tcp).unwrap();
        assert!(!tls.is_handshaking());
        assert!(!tls.is_server());
        assert_eq!(tls.server_name(), Some("localhost"));
        // The server's preference wins among what both offer.
        assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
        assert_eq!(
            tls.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        assert!(tls.cipher_suite().is_some());
        assert_eq!(tls.peer_certificates().map(|c| c.len()), Some(1));

        // Small, then 1 MiB (many records), read back as it comes.
        tls.write_all(b"hello").unwrap();
        let mut got = [0; 5];
        tls.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"HELLO");
        let big: Vec<u8> = (0..1 << 20).map(|i| b"abcdefgh"[i % 8]).collect();
        let mut back = Vec::new();
        let mut buf = vec![0; 32 * 1024];
        for chunk in big.chunks(100 * 1024) {
            tls.write_all(chunk).unwrap();
            let want = back.len() + chunk.len();
            while back.len() < want {
                let n = tls.read(&mut buf).unwrap();
                assert!(n > 0);
                back.extend_from_slice(&buf[..n]);
            }
        }
        assert_eq!(back, big.to_ascii_uppercase());
        tls.shutdown().unwrap();
        // The server's close_notify: a clean EOF.
        assert_eq!(tls.read(&mut buf).unwrap(), 0);
        let ((sni, alpn, version, is_server), total) = result(&server);
        assert_eq!(sni.as_deref(), Some("localhost"));
        assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
        assert_eq!(version, Some(rustls::ProtocolVersion::TLSv1_3));
        assert!(is_server);
        assert_eq!(total, 5 + (1 << 20));
    });
}

#[test]
fn sni_is_what_the_client_asked_for_and_none_for_an_ip_address() {
    let _s = serial();
    let pki = Pki::new(&["other.test"]);
    for (name, want) in [
        ("other.test", Some("other.test")),
        ("localhost", Some("localhost")),
        ("127.0.0.1", None),
    ] {
        let acceptor = pki.acceptor();
        let (server, tcp) = serve_one(move |tcp| {
            let mut tls = acceptor.accept(tcp).unwrap();
            let sni = tls.server_name().map(str::to_owned);
            tls.shutdown().unwrap();
            sni
        });
        let mut tls = pki.connector().connect(name, tcp).unwrap();
        assert_eq!(tls.read(&mut [0; 8]).unwrap(), 0);
        assert_eq!(result(&server).as_deref(), want, "connecting as {name}");
    }
}

#[test]
fn alpn_without_a_common_protocol_fails_and_without_alpn_is_none() {
    let _s = serial();
    let pki = Pki::new(&[]);
    // No common protocol: the server refuses (no_application_protocol), both sides see it.
    let acceptor = pki.acceptor().with_alpn(&[b"h2"]);
    let (server, tcp) = serve_one(move |tcp| acceptor.accept(tcp).map(|_| ()));
    let err = pki
        .connector()
        .with_alpn(&[b"http/1.1"])
        .connect("localhost", tcp)
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    let serr = result(&server).unwrap_err();
    assert_eq!(serr.kind(), io::ErrorKind::InvalidData, "{serr}");
    assert!(
        serr.get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
            .is_some(),
        "{serr:?}"
    );

    // The client offers no ALPN: accepted, nothing agreed.
    let acceptor = pki.acceptor().with_alpn(&[b"h2"]);
    let (server, tcp) = serve_one(move |tcp| {
        let tls = acceptor.accept(tcp).unwrap();
        tls.alpn_protocol().map(<[u8]>::to_vec)
    });
    let tls = pki.connector().connect("localhost", tcp).unwrap();
    assert_eq!(tls.alpn_protocol(), None);
    assert_eq!(result(&server), None);
}

#[test]
fn a_certificate_from_another_ca_or_for_another_name_is_refused() {
    let _s = serial();
    let pki = Pki::new(&[]);
    let stranger = Pki::new(&[]);
    for (connector, name) in [
        (stranger.connector(), "localhost"),
        (pki.connector(), "not-localhost.test"),
    ] {
        let acceptor = pki.acceptor();
        let (server, tcp) = serve_one(move |tcp| acceptor.accept(tcp).map(|_| ()));
        let err = connector.connect(name, tcp).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let inner = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>());
        assert!(
            matches!(inner, Some(rustls::Error::InvalidCertificate(_))),
            "{err:?}"
        );
        // The server hears about it through the client's alert.
        assert!(result(&server).is_err());
    }
}

#[test]
fn a_bad_server_name_is_invalid_input() {
    let pki = Pki::new(&[]);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let err = pki.connector().connect_lazy("bad name!", tcp).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("bad name!"), "{err}");
}

#[test]
fn lazy_handshake_runs_on_first_write_or_read_or_explicitly() {
    let _s = serial();
    let pki = Pki::new(&[]);
    let acceptor = pki.acceptor();
    let (server, tcp) = serve_one(move |tcp| {
        let mut tls = acceptor.accept_lazy(tcp).unwrap();
        assert!(tls.is_handshaking());
        assert_eq!(tls.server_name(), None);
        let mut line = String::new();
        // The first read runs the handshake. BufRead straight on the stream.
        tls.read_line(&mut line).unwrap();
        assert!(!tls.is_handshaking());
        tls.write_all(line.to_uppercase().as_bytes()).unwrap();
        tls.shutdown().unwrap();
        line
    });
    let mut tls = pki.connector().connect_lazy("localhost", tcp).unwrap();
    assert!(tls.is_handshaking());
    assert_eq!(tls.alpn_protocol(), None);
    tls.write_all(b"lazy line\n").unwrap(); // runs the handshake
    assert!(!tls.is_handshaking());
    tls.handshake().unwrap(); // a no-op now
    let mut out = String::new();
    tls.read_to_string(&mut out).unwrap();
    assert_eq!(out, "LAZY LINE\n");
    assert_eq!(result(&server), "lazy line\n");

    // handshake() explicitly, on both sides.
    let acceptor = pki.acceptor();
    let (server, tcp) = serve_one(move |tcp| {
        let mut tls = acceptor.accept_lazy(tcp).unwrap();
        tls.handshake().unwrap();
        tls.server_name().map(str::to_owned)
    });
    let mut tls = pki.connector().connect_lazy("localhost", tcp).unwrap();
    tls.handshake().unwrap();
    assert!(!tls.is_handshaking());
    assert_eq!(result(&server).as_deref(), Some("localhost"));
}

#[test]
fn close_without_close_notify_is_an_error_unless_ragged_eofs_are_suppressed() {
    let _s = serial();
    let pki = Pki::new(&[]);
    for suppress in [false, true] {
        let acceptor = pki.acceptor();
        let (server, tcp) = serve_one(move |tcp| {
            let mut tls = acceptor.accept(tcp).unwrap();
            tls.write_all(b"partial").unwrap();
            // Dropped without shutdown(): TCP closes, no close_notify.
        });
        let mut tls = pki.connector().connect("localhost", tcp).unwrap();
        tls.set_suppress_ragged_eofs(suppress);
        assert_eq!(tls.suppress_ragged_eofs(), suppress);
        server.join();
        let mut got = [0; 7];
        tls.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"partial");
        let r = tls.read(&mut [0; 16]);
        if suppress {
            assert_eq!(r.unwrap(), 0);
        } else {
            let err = r.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
            assert!(err.to_string().contains("close_notify"), "{err}");
        }
    }
}

#[test]
fn shutdown_sends_close_notify_and_reading_still_works_until_the_peers() {
    let _s = serial();
    let pki = Pki::new(&[]);
    let acceptor = pki.acceptor();
    let (server, tcp) = serve_one(move |tcp| {
        let mut tls = acceptor.accept(tcp).unwrap();
        let mut got = Vec::new();
        tls.read_to_end(&mut got).unwrap(); // ends at the client's close_notify
        tls.write_all(b"after your close_notify").unwrap();
        tls.shutdown().unwrap();
        tls.shutdown().unwrap(); // again: nothing more
        got
    });
    let mut tls = pki.connector().connect("localhost", tcp).unwrap();
    tls.write_all(b"request").unwrap();
    tls.shutdown().unwrap();
    let mut out = String::new();
    tls.read_to_string(&mut out).unwrap();
    assert_eq!(out, "after your close_notify");
    assert_eq!(result(&server), b"request");
}

#[test]
fn handshake_timeout_against_a_silent_client_and_a_silent_server() {
    let _s = serial();
    let pki = Pki::new(&[]);
    fds_flat(|| {
        let t = Duration::from_millis(200);
        // A client that connects and says nothing.
        let acceptor = pki.acceptor().with_handshake_timeout(Some(t));
        assert_eq!(acceptor.handshake_timeout(), Some(t));
        let (server, silent) = serve_one(move |tcp| {
            let start = Instant::now();
            let r = acceptor.accept(tcp).map(|_| ());
            (r, start.elapsed())
        });
        let (r, took) = result(&server);
        let err = r.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(err.to_string().contains("handshake"), "{err}");
        assert!(took >= t && took < Duration::from_secs(3), "{took:?}");
        drop(silent);

        // A server that accepts and says nothing.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_held, _) = l.accept().unwrap();
        let start = Instant::now();
        let err = pki
            .connector()
            .with_handshake_timeout(Some(t))
            .connect("localhost", tcp)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(start.elapsed() >= t && start.elapsed() < Duration::from_secs(3));
    });
}

#[test]
fn a_plaintext_http_client_gets_a_clear_error_and_a_400() {
    let _s = serial();
    let pki = Pki::new(&[]);
    let acceptor = pki.acceptor();
    let (server, mut tcp) = serve_one(move |tcp| acceptor.accept(tcp).map(|_| ()));
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let err = result(&server).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(
        err.to_string()
            .starts_with("peer is not speaking TLS (plaintext HTTP?)"),
        "{err}"
    );
    let not_tls = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<NotTlsError>())
        .unwrap();
    assert_eq!(not_tls.first_bytes, b"GET / HT");
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.0 400 Bad Request\r\n"),
        "{answer:?}"
    );
    assert!(answer.ends_with("Client sent an HTTP request to an HTTPS server.\n"));

    // Non-HTTP garbage: the same error, no HTTP answer.
    let acceptor = pki.acceptor();
    let (server, mut tcp) = serve_one(move |tcp| acceptor.accept(tcp).map(|_| ()));
    tcp.write_all(b"\x00\x01garbage").unwrap();
    let err = result(&server).unwrap_err();
    assert!(err.get_ref().unwrap().is::<NotTlsError>(), "{err:?}");
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).unwrap();
    assert!(answer.is_empty(), "{answer:?}");
}

#[test]
fn a_client_talking_to_a_plaintext_server_gets_a_clear_error() {
    let _s = serial();
    let pki = Pki::new(&[]);
    let (server, tcp) = serve_one(|mut tcp| {
        let mut buf = [0; 512];
        let _ = tcp.read(&mut buf); // the ClientHello
        tcp.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            .unwrap();
    });
    let err = pki.connector().connect("localhost", tcp).unwrap_err();
    server.join();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(
        err.to_string()
            .starts_with("peer is not speaking TLS (plaintext HTTP?)"),
        "{err}"
    );
}

#[test]
fn a_peer_closing_during_the_handshake_is_unexpected_eof() {
    let _s = serial();
    let pki = Pki::new(&[]);
    let acceptor = pki.acceptor();
    let (server, tcp) = serve_one(move |tcp| acceptor.accept(tcp).map(|_| ()));
    drop(tcp);
    let err = result(&server).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
}

#[test]
fn read_and_write_timeouts_are_the_tcp_streams() {
    let _s = serial();
    let pki = Pki::new(&[]);
    let acceptor = pki.acceptor();
    let (server, tcp) = serve_one(move |tcp| {
        let mut tls = acceptor.accept(tcp).unwrap();
        let t = Duration::from_millis(100);
        tls.set_read_timeout(Some(t)).unwrap();
        tls.set_write_timeout(Some(t)).unwrap();
        assert_eq!(tls.read_timeout().unwrap(), Some(t));
        assert_eq!(tls.write_timeout().unwrap(), Some(t));
        assert_eq!(tls.get_ref().read_timeout().unwrap(), Some(t));
        let start = Instant::now();
        let err = tls.read(&mut [0; 16]).unwrap_err();
        (err.kind(), start.elapsed(), tls.peer_addr().is_ok())
    });
    let tls = pki.connector().connect("localhost", tcp).unwrap();
    let (kind, took, peer_ok) = result(&server);
    assert_eq!(kind, io::ErrorKind::TimedOut);
    assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(3));
    assert!(peer_ok);
    assert!(tls.local_addr().is_ok());
}

#[test]
fn a_write_to_a_peer_that_never_reads_times_out() {
    let _s = serial();
    let pki = Pki::new(&[]);
    let acceptor = pki.acceptor();
    let (server, tcp) = serve_one(move |tcp| {
        let mut tls = acceptor.accept(tcp).unwrap();
        tls.set_write_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        // At most 256 MiB: the socket buffers fill long before.
        for _ in 0..4096 {
            if let Err(e) = tls.write_all(&chunk) {
                return e.kind();
            }
        }
        io::ErrorKind::Other
    });
    let _tls = pki.connector().connect("localhost", tcp).unwrap();
    assert_eq!(result(&server), io::ErrorKind::TimedOut);
}

#[test]
fn a_kill_during_a_read_unwinds_and_leaks_nothing() {
    let _s = serial();
    let pki = Pki::new(&[]);
    fds_flat(|| {
        let acceptor = pki.acceptor();
        let (server, tcp) = serve_one(move |tcp| {
            let mut tls = acceptor.accept(tcp).unwrap();
            let _ = tls.read(&mut [0; 16]); // waits until killed
            unreachable!("the read returned");
        });
        let tls = pki.connector().connect("localhost", tcp).unwrap();
        gevent::sleep(Duration::ZERO);
        server.kill();
        assert!(server.is_dead());
        drop(tls);
    });
}

#[test]
fn generic_over_any_read_write_stream() {
    // A TlsStream over a TlsStream's inner stream type other than TcpStream: &TcpStream.
    let _s = serial();
    let pki = Pki::new(&[]);
    let acceptor = pki.acceptor();
    let (server, tcp) = serve_one(move |tcp| {
        let mut tls: TlsStream<&TcpStream> = acceptor.accept(&tcp).unwrap();
        tls.write_all(b"by reference").unwrap();
        tls.shutdown().unwrap();
    });
    let mut tls = pki.connector().connect("localhost", &tcp).unwrap();
    let mut out = String::new();
    tls.read_to_string(&mut out).unwrap();
    assert_eq!(out, "by reference");
    server.join();
    assert!(format!("{tls:?}").contains("client"));
}

#[test]
fn acceptors_and_connectors_can_go_to_other_threads() {
    fn send_sync_clone<T: Send + Sync + Clone>() {}
    send_sync_clone::<TlsAcceptor>();
    send_sync_clone::<gevent::ssl::TlsConnector>();
    // One acceptor, a hub on another thread.
    let pki = Pki::new(&[]);
    let acceptor = pki.acceptor();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let l = TcpListener::from_std(l).unwrap();
        let mut tls = acceptor.accept(l.accept().unwrap().0).unwrap();
        tls.write_all(b"from another thread").unwrap();
        tls.shutdown().unwrap();
    });
    let mut tls = pki
        .connector()
        .connect("localhost", TcpStream::connect(addr).unwrap())
        .unwrap();
    let mut out = String::new();
    tls.read_to_string(&mut out).unwrap();
    assert_eq!(out, "from another thread");
    t.join().unwrap();
}

#[test]
fn configs_made_with_rustls_directly_client_certificates() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let _s = serial();
    let pki = Pki::new(&[]);
    let pem_certs = |pem: &str| -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .map(Result::unwrap)
            .collect()
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(pem_certs(&pki.ca_pem));
    let roots = std::sync::Arc::new(roots);
    let provider = gevent::ssl::crypto_provider();

    // A server that requires a client certificate from the CA.
    let acceptor = TlsAcceptor::from_config(client_auth_server_config(
        &pki,
        roots.clone(),
        provider.clone(),
    ));
    let (server, tcp) = serve_one(move |tcp| {
        let mut tls = acceptor.accept(tcp).unwrap();
        let n = tls.peer_certificates().map_or(0, |c| c.len());
        tls.shutdown().unwrap();
        n
    });
    let client_config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots.clone())
        .with_client_auth_cert(
            pem_certs(&pki.client_cert_pem),
            PrivateKeyDer::from_pem_slice(pki.client_key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    let connector = gevent::ssl::TlsConnector::from_config(std::sync::Arc::new(client_config));
    let mut tls = connector.connect("localhost", tcp).unwrap();
    assert_eq!(tls.read(&mut [0; 8]).unwrap(), 0);
    assert_eq!(
        result(&server),
        1,
        "the server saw the client's certificate"
    );

    // The same server refuses a client without a certificate.
    let acceptor = TlsAcceptor::from_config(client_auth_server_config(&pki, roots, provider));
    let (server, tcp) = serve_one(move |tcp| acceptor.accept(tcp).map(|_| ()));
    let r = pki
        .connector()
        .connect("localhost", tcp)
        .and_then(|mut tls| tls.read(&mut [0; 8]));
    assert!(r.is_err(), "{r:?}");
    let err = result(&server).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
}

/// A server config (ring) that requires a client certificate from the test CA.
fn client_auth_server_config(
    pki: &Pki,
    roots: std::sync::Arc<rustls::RootCertStore>,
    provider: std::sync::Arc<rustls::crypto::CryptoProvider>,
) -> std::sync::Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .unwrap();
    let certs = CertificateDer::pem_slice_iter(pki.cert_pem.as_bytes())
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).unwrap();
    std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .unwrap(),
    )
}

#[test]
fn pem_errors_are_clear() {
    let pki = Pki::new(&[]);
    let missing = pki.dir.join("missing.pem");
    let err = TlsAcceptor::from_pem_files(&missing, &pki.key_file).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(err.to_string().contains("missing.pem"), "{err}");
    // Key file given as the certificate file.
    let err = TlsAcceptor::from_pem_files(&pki.key_file, &pki.key_file).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("no PEM certificate"), "{err}");
    let err = TlsAcceptor::from_pem_files(&pki.cert_file, &pki.cert_file).unwrap_err();
    assert!(err.to_string().contains("no PEM private key"), "{err}");
    // A key that is not the certificate's.
    let other = Pki::new(&[]);
    let err = TlsAcceptor::from_pem(pki.cert_pem.as_bytes(), other.key_pem.as_bytes()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let err = gevent::ssl::TlsConnector::with_root_pem(b"nothing here").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(gevent::ssl::TlsConnector::with_root_pem_file(&pki.ca_file).is_ok());
}
