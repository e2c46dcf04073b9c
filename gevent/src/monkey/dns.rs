//! The name-service hooks: `getaddrinfo` (what `ToSocketAddrs` calls), `getnameinfo`,
//! `gethostbyname` — run on the hub's thread pool while the calling greenlet waits.
//!
//! The real functions are the next definitions (`dlsym(RTLD_NEXT)`, libc's): there is no system
//! call for them. The job owns copies of its inputs and its outputs (never pointers into the
//! caller's memory), so a caller killed while it waits leaves nothing dangling: the job finishes on
//! its thread and its result is freed there.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::intr::Intr;
use libc::{addrinfo, c_char, c_int, hostent, size_t, sockaddr, socklen_t};

use super::{active, park, set_errno, Module};

/// Takes every hook's address so the linker keeps them (see the module docs).
pub(super) fn link() {
    let hooks: [usize; 3] = [
        getaddrinfo as *const () as usize,
        getnameinfo as *const () as usize,
        gethostbyname as *const () as usize,
    ];
    std::hint::black_box(hooks);
}

/// glibc's `EAI_SYSTEM` ("system error, see errno").
const EAI_SYSTEM: c_int = -11;
/// glibc's `NO_RECOVERY` h_errno.
const NO_RECOVERY: c_int = 3;

type GaiFn = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    *const addrinfo,
    *mut *mut addrinfo,
) -> c_int;
type GniFn = unsafe extern "C" fn(
    *const sockaddr,
    socklen_t,
    *mut c_char,
    socklen_t,
    *mut c_char,
    socklen_t,
    c_int,
) -> c_int;
type GhbrFn = unsafe extern "C" fn(
    *const c_char,
    *mut hostent,
    *mut c_char,
    size_t,
    *mut *mut hostent,
    *mut c_int,
) -> c_int;

extern "C" {
    fn __h_errno_location() -> *mut c_int;
}

static GAI: AtomicUsize = AtomicUsize::new(0);
static GNI: AtomicUsize = AtomicUsize::new(0);
static GHBR: AtomicUsize = AtomicUsize::new(0);

/// The address of the next definition of `name` (libc's), cached in `slot`; 0 if there is none.
fn next(slot: &AtomicUsize, name: &CStr) -> usize {
    let p = slot.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: `name` is a valid C string; RTLD_NEXT asks for the definition after this object's.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize;
    slot.store(p, Ordering::Relaxed);
    p
}

fn real_gai() -> Option<GaiFn> {
    let p = next(&GAI, c"getaddrinfo");
    // SAFETY: a non-null address dlsym gave for "getaddrinfo" is that function, of this type.
    (p != 0).then(|| unsafe { std::mem::transmute::<usize, GaiFn>(p) })
}

fn real_gni() -> Option<GniFn> {
    let p = next(&GNI, c"getnameinfo");
    // SAFETY: as in `real_gai`, for "getnameinfo".
    (p != 0).then(|| unsafe { std::mem::transmute::<usize, GniFn>(p) })
}

fn real_ghbr() -> Option<GhbrFn> {
    let p = next(&GHBR, c"gethostbyname_r");
    // SAFETY: as in `real_gai`, for "gethostbyname_r".
    (p != 0).then(|| unsafe { std::mem::transmute::<usize, GhbrFn>(p) })
}

/// Copies a nullable C string.
///
/// # Safety
/// `p` is null or a valid C string.
unsafe fn copy_str(p: *const c_char) -> Option<CString> {
    // SAFETY: per this function's contract.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_owned())
}

/// A `getaddrinfo` result owned by whoever holds it; freed unless taken.
struct AiList(*mut addrinfo);

// SAFETY: the list is heap memory from libc's malloc, owned by this value alone (no other pointer
// to it exists until `take`), so it may move to and be freed on any thread.
unsafe impl Send for AiList {}

impl Drop for AiList {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a list getaddrinfo returned, not freed yet (the pointer is nulled on take).
            unsafe { libc::freeaddrinfo(self.0) };
        }
    }
}

/// Interposed `getaddrinfo(3)`: inside a greenlet, the real one runs on the thread pool.
///
/// # Safety
/// The C contract: `node`/`service` null or C strings, `hints` null or valid, `res` valid.
#[no_mangle]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    let Some(real) = real_gai() else {
        set_errno(libc::ENOSYS);
        return EAI_SYSTEM;
    };
    if !active(Module::Dns) {
        // SAFETY: the caller's arguments, forwarded unchanged.
        return unsafe { real(node, service, hints, res) };
    }
    // SAFETY: per the C contract.
    let (node, service) = unsafe { (copy_str(node), copy_str(service)) };
    let hints = (!hints.is_null()).then(|| {
        // SAFETY: non-null and valid per the C contract.
        let h = unsafe { &*hints };
        (h.ai_flags, h.ai_family, h.ai_socktype, h.ai_protocol)
    });
    let job = move || {
        // SAFETY: addrinfo is plain data; all-zero is valid (null pointers).
        let mut h: addrinfo = unsafe { std::mem::zeroed() };
        if let Some((f, fam, st, p)) = hints {
            h.ai_flags = f;
            h.ai_family = fam;
            h.ai_socktype = st;
            h.ai_protocol = p;
        }
        let mut out: *mut addrinfo = std::ptr::null_mut();
        // SAFETY: owned C strings (or null), owned hints, a local out-pointer.
        let rc = unsafe {
            real(
                node.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                service.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                if hints.is_some() {
                    &h
                } else {
                    std::ptr::null()
                },
                &mut out,
            )
        };
        // SAFETY: reading this worker thread's errno.
        let e = unsafe { *libc::__errno_location() };
        (rc, e, AiList(out))
    };
    match park(Intr::Never, || {
        crate::threadpool::default_pool().spawn(job).join()
    }) {
        Ok(Ok((rc, e, mut list))) => {
            // SAFETY: `res` is valid for writes per the C contract; ownership passes to the caller.
            unsafe { *res = std::mem::replace(&mut list.0, std::ptr::null_mut()) };
            if rc == EAI_SYSTEM {
                set_errno(e);
            }
            rc
        }
        Ok(Err(_panic)) => {
            set_errno(libc::EIO);
            EAI_SYSTEM
        }
        Err(e) => {
            set_errno(e);
            EAI_SYSTEM
        }
    }
}

/// Interposed `getnameinfo(3)`: inside a greenlet, the real one runs on the thread pool.
///
/// # Safety
/// The C contract: `sa` valid for `salen` bytes; `host`/`serv` null or valid for their lengths.
#[no_mangle]
pub unsafe extern "C" fn getnameinfo(
    sa: *const sockaddr,
    salen: socklen_t,
    host: *mut c_char,
    hostlen: socklen_t,
    serv: *mut c_char,
    servlen: socklen_t,
    flags: c_int,
) -> c_int {
    let Some(real) = real_gni() else {
        set_errno(libc::ENOSYS);
        return EAI_SYSTEM;
    };
    if !active(Module::Dns) || sa.is_null() {
        // SAFETY: the caller's arguments, forwarded unchanged.
        return unsafe { real(sa, salen, host, hostlen, serv, servlen, flags) };
    }
    // SAFETY: `sa` is valid for `salen` bytes per the C contract.
    let addr: Vec<u8> =
        unsafe { std::slice::from_raw_parts(sa.cast::<u8>(), salen as usize) }.to_vec();
    let (want_host, want_serv) = (!host.is_null(), !serv.is_null());
    let job = move || {
        let mut h = vec![0 as c_char; if want_host { hostlen as usize } else { 0 }];
        let mut s = vec![0 as c_char; if want_serv { servlen as usize } else { 0 }];
        // SAFETY: owned copies and buffers of the requested lengths (null when not requested).
        let rc = unsafe {
            real(
                addr.as_ptr().cast(),
                salen,
                if want_host {
                    h.as_mut_ptr()
                } else {
                    std::ptr::null_mut()
                },
                hostlen,
                if want_serv {
                    s.as_mut_ptr()
                } else {
                    std::ptr::null_mut()
                },
                servlen,
                flags,
            )
        };
        // SAFETY: reading this worker thread's errno.
        let e = unsafe { *libc::__errno_location() };
        (rc, e, h, s)
    };
    match park(Intr::Never, || {
        crate::threadpool::default_pool().spawn(job).join()
    }) {
        Ok(Ok((rc, e, h, s))) => {
            // SAFETY: the caller's buffers, of exactly these lengths per the C contract.
            unsafe {
                if want_host {
                    std::ptr::copy_nonoverlapping(h.as_ptr(), host, h.len());
                }
                if want_serv {
                    std::ptr::copy_nonoverlapping(s.as_ptr(), serv, s.len());
                }
            }
            if rc == EAI_SYSTEM {
                set_errno(e);
            }
            rc
        }
        Ok(Err(_panic)) => {
            set_errno(libc::EIO);
            EAI_SYSTEM
        }
        Err(e) => {
            set_errno(e);
            EAI_SYSTEM
        }
    }
}

/// A `hostent` and the buffer its pointers point into (the buffer's heap block never moves).
struct HostBuf {
    ent: hostent,
    _buf: Vec<c_char>,
}

// SAFETY: `ent`'s pointers point into `_buf`'s heap block, owned by this value alone.
unsafe impl Send for HostBuf {}

thread_local! {
    /// The last results of `gethostbyname` in greenlets of this thread: a pointer it returned stays
    /// valid for the next 15 calls (libc's stays valid until the next call).
    static HOSTS: RefCell<VecDeque<Box<HostBuf>>> = const { RefCell::new(VecDeque::new()) };
}

/// Interposed `gethostbyname(3)`: inside a greenlet, the real `gethostbyname_r` runs on the thread
/// pool; the result stays valid until 16 more calls on this thread (libc's: until the next call).
///
/// # Safety
/// The C contract: `name` is a C string.
#[no_mangle]
pub unsafe extern "C" fn gethostbyname(name: *const c_char) -> *mut hostent {
    let real_plain = next(&GHB, c"gethostbyname");
    if !active(Module::Dns) || name.is_null() || real_ghbr().is_none() {
        if real_plain == 0 {
            return std::ptr::null_mut();
        }
        // SAFETY: the address dlsym gave for "gethostbyname", of this type.
        let f = unsafe {
            std::mem::transmute::<usize, unsafe extern "C" fn(*const c_char) -> *mut hostent>(
                real_plain,
            )
        };
        // SAFETY: the caller's argument, forwarded unchanged.
        return unsafe { f(name) };
    }
    let real = real_ghbr().expect("checked above");
    // SAFETY: per the C contract.
    let name = unsafe { CStr::from_ptr(name) }.to_owned();
    let job = move || {
        let mut size = 1024usize;
        loop {
            let mut b = Box::new(HostBuf {
                // SAFETY: hostent is plain data; all-zero is valid (null pointers).
                ent: unsafe { std::mem::zeroed() },
                _buf: vec![0; size],
            });
            let mut out: *mut hostent = std::ptr::null_mut();
            let mut herr: c_int = 0;
            let buf = b._buf.as_mut_ptr();
            // SAFETY: an owned name, hostent and buffer of `size` bytes, local out-pointers.
            let rc = unsafe { real(name.as_ptr(), &mut b.ent, buf, size, &mut out, &mut herr) };
            if rc == libc::ERANGE && size < (1 << 20) {
                size *= 4;
                continue;
            }
            return (!out.is_null()).then_some(b).ok_or(herr);
        }
    };
    match park(Intr::Never, || {
        crate::threadpool::default_pool().spawn(job).join()
    }) {
        Ok(Ok(Ok(b))) => HOSTS.with(|h| {
            let mut h = h.borrow_mut();
            if h.len() >= 16 {
                h.pop_front();
            }
            h.push_back(b);
            let last = h.back_mut().expect("just pushed");
            &mut last.ent as *mut hostent
        }),
        other => {
            let herr = match other {
                Ok(Ok(Err(herr))) => herr,
                _ => NO_RECOVERY,
            };
            // SAFETY: this thread's h_errno slot.
            unsafe { *__h_errno_location() = herr };
            std::ptr::null_mut()
        }
    }
}

static GHB: AtomicUsize = AtomicUsize::new(0);
