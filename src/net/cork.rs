//! TCP_CORK on an upstream's socket while a request is written: Pingora's HTTP/1 client
//! flushes a request's header and its body separately, so uncorked they leave as two segments
//! and wake the upstream twice; corked, the kernel sends them as one when the cork comes off.
//! A loopback upstream spent ~10% less CPU a request, and the gateway as much as a syscall's
//! worth (`bench-results/profile.md`).

use pingora::protocols::http::client::HttpSession;

/// Holds (`on`) or releases TCP_CORK on an HTTP/1 upstream's socket: Pingora flushes the
/// request's header and its body separately, two segments and two wake-ups of the upstream;
/// corked, they leave as one. Whether it was set.
pub fn set(up: &HttpSession, on: bool) -> bool {
    let HttpSession::H1(h1) = up else {
        return false;
    };
    let v: libc::c_int = on.into();
    // Pingora's streams (TCP, and TLS over it) are identified by their socket's descriptor.
    // SAFETY: the descriptor lives as long as the session; the option is a c_int of this size.
    let r = unsafe {
        libc::setsockopt(
            h1.stream().id(),
            libc::IPPROTO_TCP,
            libc::TCP_CORK,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    r == 0
}
