//! `gevent::ssl` against TLS stacks nobody here wrote: `openssl s_client` (TLS 1.3 and 1.2), Python's
//! `ssl` module (as a client, as a server, and `http.client` speaking plaintext to the TLS port), and
//! curl over HTTPS with keep-alive. Each is skipped, saying so, when its tool is missing. The tools
//! run as children waited for cooperatively, so the server runs on the test's own hub.

mod ssl_common;

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::rc::Rc;
use std::time::Duration;

use gevent::server::StreamServer;
use gevent::ssl::{rustls, TlsStream};
use gevent::subprocess::Command;
use ssl_common::{fds_flat, have, serial, Pki};

/// What a server handler saw of one connection.
#[derive(Debug, Clone, Default)]
struct Seen {
    sni: Option<String>,
    alpn: Option<Vec<u8>>,
    version: Option<rustls::ProtocolVersion>,
    requests: usize,
}

type Log = Rc<RefCell<Vec<Seen>>>;

fn seen(tls: &TlsStream) -> Seen {
    Seen {
        sni: tls.server_name().map(str::to_owned),
        alpn: tls.alpn_protocol().map(<[u8]>::to_vec),
        version: tls.protocol_version(),
        requests: 0,
    }
}

/// A TLS server answering one line upper-cased, then close_notify; it logs what it saw.
fn upper_server(pki: &Pki, alpn: &[&[u8]]) -> (StreamServer, Log) {
    let log = Log::default();
    let l = log.clone();
    let server = StreamServer::bind_tls(
        "127.0.0.1:0",
        pki.acceptor().with_alpn(alpn),
        move |mut tls, _| {
            l.borrow_mut().push(seen(&tls));
            let mut line = String::new();
            tls.read_line(&mut line).unwrap();
            tls.write_all(line.to_uppercase().as_bytes()).unwrap();
            tls.shutdown().unwrap();
        },
    )
    .unwrap();
    server.start();
    (server, log)
}

fn skip(tool: &str) -> bool {
    if have(tool) {
        return false;
    }
    eprintln!("skipped: `{tool}` is not installed (apt-get install {tool})");
    true
}

fn run(cmd: &mut Command, stdin: &[u8]) -> (bool, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.as_mut().unwrap().write_all(stdin).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn openssl_s_client_tls13_and_tls12() {
    let _s = serial();
    if skip("openssl") {
        return;
    }
    let pki = Pki::new(&[]);
    fds_flat(|| {
        let (server, log) = upper_server(&pki, &[b"http/1.1"]);
        let port = server.local_addr().port();
        for (flag, version) in [
            ("-tls1_3", rustls::ProtocolVersion::TLSv1_3),
            ("-tls1_2", rustls::ProtocolVersion::TLSv1_2),
        ] {
            let (ok, out, err) = run(
                Command::new("openssl")
                    .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
                    .args(["-servername", "localhost", "-alpn", "http/1.1", flag])
                    .arg("-CAfile")
                    .arg(&pki.ca_file)
                    .args(["-verify_return_error", "-ign_eof"]),
                b"hello openssl\n",
            );
            assert!(ok, "openssl s_client {flag} failed:\n{out}\n{err}");
            assert!(out.contains("HELLO OPENSSL"), "{out}");
            assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
            assert!(out.contains("ALPN protocol: http/1.1"), "{out}");
            let s = log.borrow_mut().pop().unwrap();
            assert_eq!(s.sni.as_deref(), Some("localhost"));
            assert_eq!(s.alpn.as_deref(), Some(&b"http/1.1"[..]));
            assert_eq!(s.version, Some(version), "{flag}");
        }
        server.stop(Duration::from_secs(1));
    });
}

const PY_CLIENT: &str = r#"
import http.client, socket, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
ctx.set_alpn_protocols(["h2", "http/1.1"])
with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"hello python\n")
        data = b""
        while True:
            chunk = s.recv(4096)  # b"" only after the server's close_notify
            if not chunk:
                break
            data += chunk
        print(s.version(), s.selected_alpn_protocol(), data.decode().strip())
# Plaintext HTTP to the TLS port: the server answers 400.
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
c.request("GET", "/")
r = c.getresponse()
print(r.status, r.read().decode().strip())
"#;

#[test]
fn python_ssl_client_and_plaintext_http_client() {
    let _s = serial();
    if skip("python3") {
        return;
    }
    let pki = Pki::new(&[]);
    fds_flat(|| {
        let (server, log) = upper_server(&pki, &[b"http/1.1"]);
        let port = server.local_addr().port().to_string();
        let (ok, out, err) = run(
            Command::new("python3")
                .args(["-c", PY_CLIENT, &port])
                .arg(&pki.ca_file),
            b"",
        );
        assert!(ok, "python failed:\n{out}\n{err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "TLSv1.3 http/1.1 HELLO PYTHON", "{out}");
        assert_eq!(
            lines[1], "400 Client sent an HTTP request to an HTTPS server.",
            "{out}"
        );
        let s = log.borrow()[0].clone();
        assert_eq!(s.sni.as_deref(), Some("localhost"));
        assert_eq!(s.alpn.as_deref(), Some(&b"http/1.1"[..]));
        server.stop(Duration::from_secs(1));
    });
}

const PY_SERVER: &str = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
ctx.set_alpn_protocols(["http/1.1"])
seen = []
ctx.sni_callback = lambda sock, name, c: seen.append(name)
with socket.create_server(("127.0.0.1", 0)) as l:
    print(l.getsockname()[1], flush=True)
    l.settimeout(10)
    raw, _ = l.accept()
    raw.settimeout(10)
    s = ctx.wrap_socket(raw, server_side=True)
    line = b""
    while not line.endswith(b"\n"):
        line += s.recv(100)
    s.sendall(line.upper())
    s = s.unwrap()  # close_notify both ways
    s.close()
    print(seen[0], s is not None)
"#;

#[test]
fn our_client_against_a_python_ssl_server() {
    let _s = serial();
    if skip("python3") {
        return;
    }
    let pki = Pki::new(&[]);
    fds_flat(|| {
        let mut child = Command::new("python3")
            .args(["-c", PY_SERVER])
            .arg(&pki.cert_file)
            .arg(&pki.key_file)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut port = String::new();
        stdout.read_line(&mut port).unwrap();
        let port: u16 = port.trim().parse().expect("the python server's port");
        let tcp = gevent::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut tls = pki
            .connector()
            .with_alpn(&[b"h2", b"http/1.1"])
            .connect("localhost", tcp)
            .unwrap();
        assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
        tls.write_all(b"hello from rust\n").unwrap();
        let mut got = [0; 16];
        tls.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"HELLO FROM RUST\n");
        // Python's unwrap() sends close_notify and waits for ours.
        assert_eq!(tls.read(&mut [0; 8]).unwrap(), 0);
        tls.shutdown().unwrap();
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        assert_eq!(rest.trim(), "localhost True");
        assert!(child.wait().unwrap().success());
        drop((tls, stdout));
    });
}

/// A tiny keep-alive HTTP/1.1 responder over TLS: `Hello, World!` for every request head, until the
/// client closes (with or without close_notify, as the protocol frames its messages itself).
fn https_server(pki: &Pki) -> (StreamServer, Log) {
    let log = Log::default();
    let l = log.clone();
    let server = StreamServer::bind_tls(
        "127.0.0.1:0",
        pki.acceptor().with_alpn(&[b"http/1.1"]),
        move |mut tls, _| {
            tls.set_suppress_ragged_eofs(true);
            let mut s = seen(&tls);
            'conn: loop {
                let mut line = String::new();
                loop {
                    line.clear();
                    match tls.read_line(&mut line) {
                        Ok(0) | Err(_) => break 'conn,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                s.requests += 1;
                let r = tls.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n\
                      Hello, World!",
                );
                if r.is_err() {
                    break;
                }
            }
            let _ = tls.shutdown();
            l.borrow_mut().push(s);
        },
    )
    .unwrap();
    server.start();
    (server, log)
}

#[test]
fn curl_https_with_keep_alive() {
    let _s = serial();
    if skip("curl") {
        return;
    }
    let pki = Pki::new(&[]);
    fds_flat(|| {
        let (server, log) = https_server(&pki);
        let port = server.local_addr().port();
        let url = format!("https://localhost:{port}/");
        let (ok, out, err) = run(
            Command::new("curl")
                .args(["-sS", "--max-time", "10", "--cacert"])
                .arg(&pki.ca_file)
                .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
                .args(["-w", r"|%{http_code} %{http_version} %{num_connects}\n"])
                .args([&url, &url]),
            b"",
        );
        assert!(ok, "curl failed:\n{out}\n{err}");
        // Two requests, one connection (the second reused it: 0 new connects).
        assert_eq!(
            out, "Hello, World!|200 1.1 1\nHello, World!|200 1.1 0\n",
            "{err}"
        );
        server.stop(Duration::from_secs(1));
        let log = log.borrow();
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!(log[0].requests, 2);
        assert_eq!(log[0].sni.as_deref(), Some("localhost"));
        assert_eq!(log[0].alpn.as_deref(), Some(&b"http/1.1"[..]));
    });
}
