//! Reads `$phone_ip` and `$mac` from a network interface, and tells when they may have changed.

use nix::libc;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::OnceLock;

/// One datagram socket for the interface ioctls, opened on first use.
fn sock() -> Option<&'static OwnedFd> {
    static S: OnceLock<Option<OwnedFd>> = OnceLock::new();
    S.get_or_init(|| {
        nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Datagram,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        )
        .ok()
    })
    .as_ref()
}

fn ifreq(iface: &str, req: libc::c_ulong) -> Option<libc::ifreq> {
    // The name goes to the kernel as a NUL-terminated array of IFNAMSIZ bytes: it must fit with
    // its NUL and hold none of its own. Nothing else reads it (no path is built from it).
    let b = iface.as_bytes();
    if b.is_empty() || b.len() >= libc::IFNAMSIZ || b.contains(&0) {
        return None;
    }
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in r.ifr_name.iter_mut().zip(b) {
        *d = *s as libc::c_char;
    }
    let fd = sock()?.as_raw_fd();
    // SAFETY: `r` is a valid ifreq the kernel fills for these two requests.
    let rc = unsafe { libc::ioctl(fd, req as _, &mut r) };
    (rc == 0).then_some(r)
}

/// The first IPv4 address of `iface`, if it has one.
pub fn ipv4(iface: &str) -> Option<Ipv4Addr> {
    let r = ifreq(iface, libc::SIOCGIFADDR)?;
    // SAFETY: SIOCGIFADDR on an AF_INET socket fills ifru_addr with a sockaddr_in.
    let sa: libc::sockaddr_in = unsafe { std::mem::transmute_copy(&r.ifr_ifru.ifru_addr) };
    Some(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)))
}

/// The MAC of `iface` as 12 lowercase hex digits (on the stack: this runs for every message).
pub fn mac(iface: &str) -> Option<heapless::String<12>> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let r = ifreq(iface, libc::SIOCGIFHWADDR)?;
    // SAFETY: SIOCGIFHWADDR fills ifru_hwaddr.
    let hw = unsafe { r.ifr_ifru.ifru_hwaddr };
    let mut s = heapless::String::<12>::new();
    for b in &hw.sa_data[..6] {
        // c_char: i8 on x86_64, u8 on ARM (where the cast changes nothing).
        #[allow(clippy::unnecessary_cast)]
        let b = *b as u8;
        let _ = s.push(HEX[(b >> 4) as usize] as char);
        let _ = s.push(HEX[(b & 15) as usize] as char);
    }
    Some(s)
}

/// Messages of the routing socket read per wake-up at most; more (or an overflow) is "changed".
const WATCH_READS: usize = 64;

/// The kernel's notices of link and IPv4 address changes (an rtnetlink socket in the
/// `RTMGRP_LINK` and `RTMGRP_IPV4_IFADDR` groups): the daemon reads `$phone_ip` and `$mac` once
/// and again only after a notice, instead of two `ioctl`s per message. Without it (a kernel or
/// sandbox that refuses the socket), they are read for every message as before.
pub struct Watch {
    fd: OwnedFd,
}

impl Watch {
    pub fn open() -> Option<Watch> {
        use nix::sys::socket::{
            bind, socket, AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType,
        };
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .ok()?;
        let groups = (libc::RTMGRP_LINK | libc::RTMGRP_IPV4_IFADDR) as u32;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups)).ok()?;
        Some(Watch { fd })
    }

    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.fd)
    }

    /// Reads and drops the notices waiting; true when there was any (or the socket overflowed:
    /// notices were lost, so anything may have changed).
    pub fn drain(&self) -> bool {
        use nix::errno::Errno;
        use nix::sys::socket::{recv, MsgFlags};
        let mut buf = [0u8; 1024];
        let mut any = false;
        for _ in 0..WATCH_READS {
            match recv(
                self.fd.as_raw_fd(),
                &mut buf,
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC,
            ) {
                Err(Errno::EAGAIN) => return any,
                Err(Errno::EINTR) => {}
                _ => any = true,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback() {
        assert_eq!(super::ipv4("lo"), Some(std::net::Ipv4Addr::LOCALHOST));
        assert_eq!(super::mac("lo").as_deref(), Some("000000000000"));
        assert_eq!(super::mac("../etc"), None);
        assert_eq!(super::ipv4("no-such-if0"), None);
        assert_eq!(super::mac("no-such-if0"), None);
        assert_eq!(super::ipv4("a-name-far-too-long-for-ifnamsiz"), None);
        assert_eq!(super::ipv4(""), None);
        assert_eq!(super::ipv4("lo\0x"), None);
    }
}
