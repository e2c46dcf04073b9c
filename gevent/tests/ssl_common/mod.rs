//! Shared by the `ssl_*` tests: a throwaway PKI made with rcgen (a CA, and a server certificate it
//! signed for `localhost` and `127.0.0.1`), written to PEM files in a temporary directory; fd counting.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// A CA and a server certificate signed by it, as PEM text and files.
pub struct Pki {
    pub dir: PathBuf,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// A client certificate (CN `client`) and key from the same CA, in PEM.
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

impl Pki {
    /// A new CA and a certificate for `localhost` and `127.0.0.1` (plus `names`).
    pub fn new(names: &[&str]) -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "gevent test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let mut sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        sans.extend(names.iter().map(|n| n.to_string()));
        let mut params = CertificateParams::new(sans).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();

        let mut cparams = CertificateParams::new(Vec::<String>::new()).unwrap();
        cparams
            .distinguished_name
            .push(DnType::CommonName, "client");
        let ckey = KeyPair::generate().unwrap();
        let ccert = cparams.signed_by(&ckey, &issuer).unwrap();

        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gevent-ssl-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| -> PathBuf {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let (ca_pem, cert_pem, key_pem) = (ca_cert.pem(), cert.pem(), key.serialize_pem());
        Pki {
            ca_file: write("ca.pem", &ca_pem),
            cert_file: write("cert.pem", &cert_pem),
            key_file: write("key.pem", &key_pem),
            dir,
            ca_pem,
            cert_pem,
            key_pem,
            client_cert_pem: ccert.pem(),
            client_key_pem: ckey.serialize_pem(),
        }
    }

    pub fn acceptor(&self) -> gevent::ssl::TlsAcceptor {
        gevent::ssl::TlsAcceptor::from_pem_files(&self.cert_file, &self.key_file).unwrap()
    }

    pub fn connector(&self) -> gevent::ssl::TlsConnector {
        gevent::ssl::TlsConnector::with_root_pem(self.ca_pem.as_bytes()).unwrap()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Open file descriptors of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Tests in one binary take turns, so each one's fd counts are its own.
pub fn serial() -> MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    M.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` and checks the process has as many fds afterwards as before (the hub made first).
pub fn fds_flat(f: impl FnOnce()) {
    gevent::get_hub();
    let before = fd_count();
    f();
    let after = fd_count();
    assert_eq!(before, after, "fds before {before}, after {after}");
}

/// Whether `tool` can be run (`tool -version`/`--version` style probing is the caller's).
pub fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| is_exe(&d.join(tool))))
}

fn is_exe(p: &Path) -> bool {
    p.is_file()
}
