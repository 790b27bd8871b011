//! FFI for batched datagram I/O (`recvmmsg`, `sendmmsg`) and the socket options std does not
//! expose. Every `unsafe` block names the invariant it relies on.
#![expect(unsafe_code, reason = "the FFI of netio lives here and only here")]

use std::io;
use std::mem::{self, MaybeUninit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Most datagrams moved by one `recvmmsg`/`sendmmsg` call.
pub(crate) const MAX_BATCH: usize = 64;

/// Room for one `IP_PKTINFO` or `IPV6_PKTINFO` control message and one `UDP_GRO` message
/// (with alignment slack).
const CMSG_LEN: usize = 96;

/// Control-message storage aligned for `cmsghdr`, as the `CMSG_*` macros require.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_LEN]);

/// What the kernel reported for one received datagram.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Received {
    pub(crate) len: usize,
    pub(crate) from: SocketAddr,
    pub(crate) local: Option<IpAddr>,
    pub(crate) truncated: bool,
    /// The `UDP_GRO` segment size when the kernel coalesced several datagrams, else 0.
    pub(crate) segment_size: usize,
}

/// One datagram to send: where, and which bytes of the caller's storage.
pub(crate) type Outgoing<'a> = crate::batch::Datagram<'a>;

/// Receives datagrams with one `recvmmsg(MSG_DONTWAIT)` call into the slots of `storage`
/// (consecutive `slot_len`-byte slots; each datagram lands at `offset` within its slot) and fills
/// `out` with what the kernel reported. Moves at most `out.len()` and [`MAX_BATCH`] datagrams.
pub(crate) fn recv_batch(
    fd: RawFd,
    storage: &mut [u8],
    slot_len: usize,
    offset: usize,
    out: &mut [Received],
) -> io::Result<usize> {
    if slot_len == 0 || offset >= slot_len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "slot too small",
        ));
    }
    let n = (storage.len() / slot_len).min(out.len()).min(MAX_BATCH);
    let mut slots = storage.chunks_exact_mut(slot_len);
    if n == 0 {
        return Ok(0);
    }
    let mut iov: [MaybeUninit<libc::iovec>; MAX_BATCH] =
        [const { MaybeUninit::uninit() }; MAX_BATCH];
    // SAFETY: all-zero bytes are a valid value of these plain C structs (integers and null pointers).
    let mut names: [libc::sockaddr_storage; MAX_BATCH] = unsafe { mem::zeroed() };
    let mut cmsgs = [CmsgBuf([0; CMSG_LEN]); MAX_BATCH];
    // SAFETY: as above.
    let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { mem::zeroed() };
    let room = slot_len - offset;
    for i in 0..n {
        let Some(slot) = slots.next() else { break };
        let data = &mut slot[offset..];
        iov[i].write(libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        });
        let h = &mut hdrs[i].msg_hdr;
        h.msg_name = (&raw mut names[i]).cast();
        h.msg_namelen = socklen_of::<libc::sockaddr_storage>();
        h.msg_iov = iov[i].as_mut_ptr();
        h.msg_iovlen = 1;
        h.msg_control = cmsgs[i].0.as_mut_ptr().cast();
        h.msg_controllen = CMSG_LEN;
    }
    // SAFETY: `hdrs[..n]` point at `iov`, `names` and `cmsgs` entries that live on this stack
    // frame until the call returns, and each iovec covers one disjoint part of `storage`, which
    // is borrowed mutably for the duration of the call. `n` fits in c_uint (≤ MAX_BATCH).
    let got = unsafe {
        libc::recvmmsg(
            fd,
            hdrs.as_mut_ptr(),
            c_count(n),
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    let got = usize::try_from(got).unwrap_or(0).min(n);
    for i in 0..got {
        let h = &hdrs[i];
        let Some(from) = sockaddr_to_std(&names[i]) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unsupported address family",
            ));
        };
        let (local, segment_size) = control_messages(&h.msg_hdr);
        out[i] = Received {
            len: usize::try_from(h.msg_len).unwrap_or(0).min(room),
            from,
            local,
            truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            segment_size,
        };
    }
    Ok(got)
}

/// Sends `msgs` with as few `sendmmsg` calls as the kernel allows. Returns how many were sent
/// before an error (the error is returned only if none was sent).
pub(crate) fn send_batch(fd: RawFd, msgs: &[Outgoing<'_>]) -> io::Result<usize> {
    let n = msgs.len().min(MAX_BATCH);
    if n == 0 {
        return Ok(0);
    }
    let mut iov: [MaybeUninit<libc::iovec>; MAX_BATCH] =
        [const { MaybeUninit::uninit() }; MAX_BATCH];
    // SAFETY: all-zero bytes are a valid value of these plain C structs.
    let mut names: [libc::sockaddr_storage; MAX_BATCH] = unsafe { mem::zeroed() };
    // SAFETY: as above.
    let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { mem::zeroed() };
    // Control buffers are zeroed only for the messages that carry one (a source address):
    // most sends have none, and 64 × 96 bytes cleared per call would be work for nothing.
    let mut cmsgs: [MaybeUninit<CmsgBuf>; MAX_BATCH] = [const { MaybeUninit::uninit() }; MAX_BATCH];
    for (i, m) in msgs.iter().take(n).enumerate() {
        iov[i].write(libc::iovec {
            iov_base: m.bytes.as_ptr().cast_mut().cast(),
            iov_len: m.bytes.len(),
        });
        let len = std_to_sockaddr(m.to, &mut names[i]);
        let h = &mut hdrs[i].msg_hdr;
        h.msg_name = (&raw mut names[i]).cast();
        h.msg_namelen = len;
        h.msg_iov = iov[i].as_mut_ptr();
        h.msg_iovlen = 1;
        if let Some(from) = m.from {
            h.msg_control = cmsgs[i].write(CmsgBuf([0; CMSG_LEN])).0.as_mut_ptr().cast();
            h.msg_controllen = CMSG_LEN;
            // SAFETY: msg_control was just pointed at this message's zeroed CMSG_LEN buffer,
            // and msg_controllen set to CMSG_LEN.
            h.msg_controllen = unsafe { write_pktinfo(h, from) };
        }
    }
    // SAFETY: `hdrs[..n]` point at `iov`, `names` and (where set) `cmsgs` entries on this stack
    // frame, each initialised above before its header points at it, and at caller slices
    // borrowed for the duration of the call; sendmsg only reads through them.
    let sent = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), c_count(n), libc::MSG_DONTWAIT) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(sent).unwrap_or(0))
}

/// Enables `IP_PKTINFO` (and `IPV6_RECVPKTINFO` on IPv6 sockets) so [`recv_batch`] reports the
/// local address each datagram was sent to.
pub(crate) fn enable_pktinfo(fd: RawFd, ipv6: bool) -> io::Result<()> {
    if ipv6 {
        set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
    } else {
        set_int_option(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)
    }
}

/// `setsockopt` of an `int`-valued option.
fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a valid c_int that outlives the call and the length passed matches it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            socklen_of::<libc::c_int>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Sends `msgs` with one `sendmmsg` call, one message per run of `runs` (which must cover
/// consecutive entries of `msgs`): a run of more than one datagram becomes one message whose
/// iovecs are its datagrams, with a `UDP_SEGMENT` control message telling the kernel to cut it
/// back into datagrams of `segment_size` bytes (UDP GSO). Returns how many runs were sent
/// (the error is returned only if none was).
pub(crate) fn send_runs(
    fd: RawFd,
    msgs: &[Outgoing<'_>],
    runs: &[crate::gso::Run],
) -> io::Result<usize> {
    let n = runs.len().min(MAX_BATCH);
    if n == 0 {
        return Ok(0);
    }
    let mut iov: [MaybeUninit<libc::iovec>; MAX_BATCH] =
        [const { MaybeUninit::uninit() }; MAX_BATCH];
    // SAFETY: all-zero bytes are a valid value of these plain C structs.
    let mut names: [libc::sockaddr_storage; MAX_BATCH] = unsafe { mem::zeroed() };
    // SAFETY: as above.
    let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { mem::zeroed() };
    // Zeroed only for the messages that carry control data (as in `send_batch`).
    let mut cmsgs: [MaybeUninit<CmsgBuf>; MAX_BATCH] = [const { MaybeUninit::uninit() }; MAX_BATCH];
    let mut used = 0;
    let mut built = 0;
    for (i, run) in runs.iter().take(n).enumerate() {
        let Some(datagrams) = msgs.get(run.first..run.first + run.count) else {
            break;
        };
        if used + datagrams.len() > MAX_BATCH || datagrams.is_empty() {
            break;
        }
        for (k, d) in datagrams.iter().enumerate() {
            iov[used + k].write(libc::iovec {
                iov_base: d.bytes.as_ptr().cast_mut().cast(),
                iov_len: d.bytes.len(),
            });
        }
        let len = std_to_sockaddr(run.to, &mut names[i]);
        let h = &mut hdrs[i].msg_hdr;
        h.msg_name = (&raw mut names[i]).cast();
        h.msg_namelen = len;
        h.msg_iov = iov[used].as_mut_ptr();
        h.msg_iovlen = datagrams.len();
        if datagrams.len() > 1 || run.from.is_some() {
            h.msg_control = cmsgs[i].write(CmsgBuf([0; CMSG_LEN])).0.as_mut_ptr().cast();
            h.msg_controllen = CMSG_LEN;
            let mut filled = 0;
            if let Some(from) = run.from {
                // SAFETY: msg_control was just pointed at this message's zeroed CMSG_LEN
                // buffer, and msg_controllen set to CMSG_LEN.
                filled = unsafe { write_pktinfo(h, from) };
            }
            if datagrams.len() > 1 {
                let size = u16::try_from(run.segment_size).unwrap_or(u16::MAX);
                // SAFETY: msg_control points at an aligned, zeroed CMSG_LEN buffer on this
                // frame; the UDP_SEGMENT header goes `filled` bytes in (0, or the PKTINFO
                // message's CMSG_SPACE, at most 40), and CMSG_SPACE(2) more fits in CMSG_LEN.
                unsafe {
                    let c = h
                        .msg_control
                        .cast::<u8>()
                        .add(filled)
                        .cast::<libc::cmsghdr>();
                    (*c).cmsg_level = libc::SOL_UDP;
                    (*c).cmsg_type = libc::UDP_SEGMENT;
                    (*c).cmsg_len = libc::CMSG_LEN(2) as usize;
                    std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), size);
                    filled += libc::CMSG_SPACE(2) as usize;
                }
            }
            h.msg_controllen = filled;
        }
        used += datagrams.len();
        built += 1;
    }
    if built == 0 {
        return Ok(0);
    }
    // SAFETY: `hdrs[..built]` point at `iov`, `names` and (where set) `cmsgs` entries on this
    // stack frame (each initialised above before its header points at it) and at caller slices
    // borrowed for the duration of the call; sendmsg only reads through them.
    let sent = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), c_count(built), libc::MSG_DONTWAIT) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(sent).unwrap_or(0))
}

/// Writes an `IP_PKTINFO` (or `IPV6_PKTINFO`) control message asking to send from `from` at
/// the start of `h`'s control buffer and returns the bytes it takes (`CMSG_SPACE` of the
/// payload).
///
/// # Safety
/// `h.msg_control` must point at a writable, aligned, zeroed buffer of at least [`CMSG_LEN`]
/// bytes, and `h.msg_controllen` must be `CMSG_LEN`.
unsafe fn write_pktinfo(h: &mut libc::msghdr, from: IpAddr) -> usize {
    // SAFETY: by the contract, msg_control is an aligned, zeroed buffer of CMSG_LEN (96) bytes,
    // more than CMSG_SPACE of either payload (12 or 20 bytes), and msg_controllen says so, so
    // CMSG_FIRSTHDR returns its start and the header and payload fit. The payloads are plain
    // C structs written unaligned.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(h);
        match from {
            IpAddr::V4(a) => {
                let size = c_len::<libc::in_pktinfo>();
                (*c).cmsg_level = libc::IPPROTO_IP;
                (*c).cmsg_type = libc::IP_PKTINFO;
                (*c).cmsg_len = libc::CMSG_LEN(size) as usize;
                let info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(a).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast(), info);
                libc::CMSG_SPACE(size) as usize
            }
            IpAddr::V6(a) => {
                let size = c_len::<libc::in6_pktinfo>();
                (*c).cmsg_level = libc::IPPROTO_IPV6;
                (*c).cmsg_type = libc::IPV6_PKTINFO;
                (*c).cmsg_len = libc::CMSG_LEN(size) as usize;
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: a.octets(),
                    },
                    ipi6_ifindex: 0,
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast(), info);
                libc::CMSG_SPACE(size) as usize
            }
        }
    }
}

/// Makes every send on `fd` a UDP GSO send cut into `size`-byte datagrams (`UDP_SEGMENT` as a
/// socket option; 0 turns it off).
pub(crate) fn set_udp_segment(fd: RawFd, size: u16) -> io::Result<()> {
    set_int_option(
        fd,
        libc::SOL_UDP,
        libc::UDP_SEGMENT,
        libc::c_int::from(size),
    )
}

/// Asks the kernel to hand over coalesced UDP datagrams (`UDP_GRO`), each buffer with its
/// segment size in a control message. Fails on kernels without UDP GRO (before 5.0).
pub(crate) fn enable_udp_gro(fd: RawFd) -> io::Result<()> {
    set_int_option(fd, libc::SOL_UDP, libc::UDP_GRO, 1)
}

// Address family constants fit sa_family_t (u16) on every platform Linux supports.
const AF_INET: libc::sa_family_t = 2;
const AF_INET6: libc::sa_family_t = 10;
const _: () =
    assert!(AF_INET as libc::c_int == libc::AF_INET && AF_INET6 as libc::c_int == libc::AF_INET6);

fn c_count(n: usize) -> libc::c_uint {
    libc::c_uint::try_from(n).unwrap_or(libc::c_uint::MAX)
}

/// A C struct's size as the `CMSG_*` macros take it.
fn c_len<T>() -> libc::c_uint {
    libc::c_uint::try_from(size_of::<T>()).unwrap_or(libc::c_uint::MAX)
}

fn socklen_of<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(size_of::<T>()).unwrap_or(libc::socklen_t::MAX)
}

/// The local address (`IP_PKTINFO`/`IPV6_PKTINFO`) and the GRO segment size (`UDP_GRO`, 0
/// when absent) of one received datagram.
fn control_messages(h: &libc::msghdr) -> (Option<IpAddr>, usize) {
    let (mut local, mut segment_size) = (None, 0);
    // SAFETY: `h` was filled by recvmmsg; msg_control points at a live CMSG_LEN buffer and
    // msg_controllen is what the kernel wrote, so the CMSG_* walk stays inside it; each
    // payload is read unaligned at the type the (level, type) pair says the kernel wrote.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                    let info: libc::in_pktinfo = std::ptr::read_unaligned(data.cast());
                    local = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                        info.ipi_addr.s_addr,
                    ))));
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let info: libc::in6_pktinfo = std::ptr::read_unaligned(data.cast());
                    local = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
                }
                (libc::SOL_UDP, libc::UDP_GRO) => {
                    let size: libc::c_int = std::ptr::read_unaligned(data.cast());
                    segment_size = usize::try_from(size).unwrap_or(0);
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    (local, segment_size)
}

fn sockaddr_to_std(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large enough for.
            let sin: libc::sockaddr_in =
                unsafe { std::ptr::read_unaligned((&raw const *ss).cast()) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6, which it is large enough for.
            let sin6: libc::sockaddr_in6 =
                unsafe { std::ptr::read_unaligned((&raw const *ss).cast()) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn std_to_sockaddr(addr: SocketAddr, ss: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: AF_INET,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in.
            unsafe { std::ptr::write_unaligned((&raw mut *ss).cast(), sin) };
            socklen_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: AF_INET6,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in6.
            unsafe { std::ptr::write_unaligned((&raw mut *ss).cast(), sin6) };
            socklen_of::<libc::sockaddr_in6>()
        }
    }
}

/// Registers an owned socket with the current tokio reactor.
pub(crate) fn register_async(
    socket: socket2::Socket,
) -> io::Result<tokio::io::unix::AsyncFd<socket2::Socket>> {
    // SAFETY: `AsyncFd` takes ownership of `socket`, so the descriptor stays open (and is not
    // reused for anything else) for exactly as long as it is registered; it is deregistered
    // when the AsyncFd is dropped, before the socket closes it.
    unsafe { tokio::io::unix::AsyncFd::register(socket) }.map_err(|e| e.into_parts().1)
}
