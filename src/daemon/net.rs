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

/// The kernel's index of `iface`, if it exists.
pub fn index(iface: &str) -> Option<u32> {
    let r = ifreq(iface, libc::SIOCGIFINDEX)?;
    // SAFETY: SIOCGIFINDEX fills ifru_ifindex.
    let i = unsafe { r.ifr_ifru.ifru_ifindex };
    u32::try_from(i).ok()
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
/// Bytes of one notice looked at: its headers and its first attribute, which for a link is the
/// name (`IFLA_IFNAME` comes first in the kernel's link messages). The rest is dropped unread.
const NOTICE_HEAD: usize = 512;

/// `IFLA_IFNAME`: a link message's attribute holding the interface's name (linux/if_link.h).
const IFLA_IFNAME: u16 = 3;
/// `struct nlmsghdr`, `struct ifinfomsg`, `struct ifaddrmsg`; the index sits at the same offset
/// (4) in both bodies.
const NLMSG_HDR: usize = 16;
const IFINFO: usize = 16;
const IFADDR: usize = 8;

/// Whether one notice of the routing socket (a datagram, of which `msg` holds the first bytes;
/// `cut` when it was longer) may concern the interface `name`, whose index was `index` when it
/// was read (`None`: it did not exist). A link message concerns it by index or by name (the
/// interface made, re-made with a new index, renamed to or from it); an address message by
/// index. What cannot be told (a malformed or cut message) counts as concerning it. Pure.
pub fn concerns(msg: &[u8], cut: bool, name: &str, index: Option<u32>) -> bool {
    let u16_at = |b: &[u8], i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
    let u32_at = |b: &[u8], i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut at = 0;
    while at < msg.len() {
        let m = &msg[at..];
        if m.len() < NLMSG_HDR {
            return true;
        }
        let len = u32_at(m, 0) as usize;
        let whole = len <= m.len();
        if len < NLMSG_HDR || (!whole && !cut) {
            return true;
        }
        let body = &m[NLMSG_HDR..len.min(m.len())];
        match u16_at(m, 4) {
            libc::RTM_NEWLINK | libc::RTM_DELLINK => {
                if body.len() < IFINFO || index == Some(u32_at(body, 4)) {
                    return true;
                }
                match link_name(&body[IFINFO..]) {
                    Some(n) if n == name.as_bytes() => return true,
                    Some(_) => {}
                    None if !whole => return true,
                    None => {}
                }
            }
            libc::RTM_NEWADDR | libc::RTM_DELADDR
                if body.len() < IFADDR || index == Some(u32_at(body, 4)) =>
            {
                return true
            }
            // Nothing else is sent to these groups; whatever it is, it names no interface.
            _ => {}
        }
        if !whole {
            // The kernel sends each notice as a datagram of its own: nothing follows the one
            // that was cut.
            return false;
        }
        at += (len + 3) & !3;
    }
    false
}

/// The `IFLA_IFNAME` among a link message's attributes (without its NUL), if it is there whole.
fn link_name(mut attrs: &[u8]) -> Option<&[u8]> {
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            return None;
        }
        if kind == IFLA_IFNAME {
            let v = &attrs[4..len];
            return Some(v.split(|b| *b == 0).next().unwrap_or(v));
        }
        attrs = attrs.get((len + 3) & !3..).unwrap_or(&[]);
    }
    None
}

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

    /// Reads the notices waiting; true when one of them may concern the interface `name` (index
    /// `index` when read), see [`concerns`], or the socket overflowed (notices were lost, so
    /// anything may have changed), or more than [`WATCH_READS`] were waiting. Only the kernel's
    /// notices are looked at (a datagram from another socket is dropped).
    pub fn drain_for(&self, name: &str, index: Option<u32>) -> bool {
        use nix::errno::Errno;
        let mut buf = [0u8; NOTICE_HEAD];
        let mut hit = false;
        for _ in 0..WATCH_READS {
            // SAFETY: an all-zero sockaddr_nl is valid; recvfrom writes at most `alen` bytes of
            // it and at most `buf.len()` bytes of the datagram.
            let mut from: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
            let mut alen = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                    (&mut from as *mut libc::sockaddr_nl).cast(),
                    &mut alen,
                )
            };
            if n < 0 {
                match Errno::last() {
                    Errno::EAGAIN => return hit,
                    Errno::EINTR => continue,
                    // ENOBUFS: notices were lost.
                    _ => return true,
                }
            }
            let n = n as usize;
            if from.nl_pid != 0 {
                continue;
            }
            hit = hit || concerns(&buf[..n.min(buf.len())], n > buf.len(), name, index);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::concerns;
    use nix::libc;

    /// A netlink message: header of `kind`, then `body`, padded to 4 bytes.
    fn msg(kind: u16, body: &[u8]) -> Vec<u8> {
        let len = (16 + body.len()) as u32;
        let mut m = Vec::new();
        m.extend_from_slice(&len.to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(body);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    fn attr(kind: u16, v: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(v);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    /// RTM_NEWLINK (or DELLINK) of interface `index`, with `attrs`.
    fn link(kind: u16, index: u32, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut b = vec![0u8, 0, 1, 0];
        b.extend_from_slice(&index.to_ne_bytes());
        b.extend_from_slice(&[0; 8]);
        for a in attrs {
            b.extend_from_slice(a);
        }
        msg(kind, &b)
    }

    fn named(index: u32, name: &str) -> Vec<u8> {
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        link(libc::RTM_NEWLINK, index, &[attr(super::IFLA_IFNAME, &n)])
    }

    fn addr(kind: u16, index: u32) -> Vec<u8> {
        let mut b = vec![2u8, 24, 0, 0];
        b.extend_from_slice(&index.to_ne_bytes());
        b.extend_from_slice(&attr(2, &[10, 9, 0, 1]));
        msg(kind, &b)
    }

    #[test]
    fn a_link_notice_concerns_the_interface_by_index_or_by_name() {
        let m = named(7, "eth0");
        assert!(concerns(&m, false, "eth0", Some(7)));
        // Another interface: not ours.
        assert!(!concerns(&named(3, "wlan0"), false, "eth0", Some(7)));
        assert!(!concerns(&named(3, "eth00"), false, "eth0", Some(7)));
        // Ours, made when it did not exist, re-made with a new index, renamed away (same index).
        assert!(concerns(&m, false, "eth0", None));
        assert!(concerns(&m, false, "eth0", Some(3)));
        assert!(concerns(&named(7, "lan1"), false, "eth0", Some(7)));
        // Gone.
        assert!(concerns(
            &link(libc::RTM_DELLINK, 7, &[]),
            false,
            "eth0",
            Some(7)
        ));
        assert!(!concerns(
            &link(libc::RTM_DELLINK, 8, &[]),
            false,
            "eth0",
            Some(7)
        ));
        // The name found after other attributes (MTU first).
        let later = link(
            libc::RTM_NEWLINK,
            9,
            &[
                attr(4, &1500u32.to_ne_bytes()),
                attr(super::IFLA_IFNAME, b"eth0\0"),
            ],
        );
        assert!(concerns(&later, false, "eth0", Some(7)));
    }

    #[test]
    fn an_address_notice_concerns_the_interface_by_index() {
        for kind in [libc::RTM_NEWADDR, libc::RTM_DELADDR] {
            assert!(concerns(&addr(kind, 7), false, "eth0", Some(7)));
            assert!(!concerns(&addr(kind, 3), false, "eth0", Some(7)));
            assert!(!concerns(&addr(kind, 3), false, "eth0", None));
        }
    }

    #[test]
    fn what_cannot_be_told_concerns_it() {
        let m = named(3, "wlan0");
        // Cut before the name: it may be ours.
        assert!(concerns(&m[..32], true, "eth0", Some(7)));
        // Cut after the name: told apart.
        assert!(!concerns(&m[..m.len() - 1], true, "eth0", Some(7)));
        // Longer than the datagram says, not cut: malformed.
        assert!(concerns(&m[..m.len() - 4], false, "eth0", Some(7)));
        // A header shorter than a header, or a length below it.
        assert!(concerns(&m[..10], false, "eth0", Some(7)));
        let mut bad = m.clone();
        bad[..4].copy_from_slice(&8u32.to_ne_bytes());
        assert!(concerns(&bad, false, "eth0", Some(7)));
        // Bodies too short for their kind.
        assert!(concerns(
            &msg(libc::RTM_NEWLINK, &[0; 8]),
            false,
            "eth0",
            Some(7)
        ));
        assert!(concerns(
            &msg(libc::RTM_NEWADDR, &[0; 4]),
            false,
            "eth0",
            Some(7)
        ));
    }

    #[test]
    fn every_message_of_a_datagram_is_looked_at() {
        let mut two = named(3, "wlan0");
        two.extend(addr(libc::RTM_NEWADDR, 7));
        assert!(concerns(&two, false, "eth0", Some(7)));
        let mut others = named(3, "wlan0");
        others.extend(addr(libc::RTM_NEWADDR, 4));
        assert!(!concerns(&others, false, "eth0", Some(7)));
        // A kind these groups do not carry names no interface (NLMSG_DONE).
        assert!(!concerns(&msg(3, &[0; 4]), false, "eth0", Some(7)));
        assert!(!concerns(&[], false, "eth0", Some(7)));
    }

    #[test]
    fn random_notices_never_panic() {
        // Real messages cut and spoiled at random places, and random bytes.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seeds = [
            named(7, "eth0"),
            addr(libc::RTM_NEWADDR, 7),
            link(libc::RTM_DELLINK, 3, &[]),
        ];
        for _ in 0..20_000 {
            let mut m = seeds[(next() % 3) as usize].clone();
            if next() % 4 == 0 {
                m.extend(seeds[(next() % 3) as usize].clone());
            }
            for _ in 0..next() % 4 {
                let i = (next() as usize) % m.len();
                m[i] = next() as u8;
            }
            let cut = (next() as usize) % (m.len() + 1);
            let _ = concerns(&m[..cut], next() % 2 == 0, "eth0", Some(7));
            let noise: Vec<u8> = (0..next() % 64).map(|_| next() as u8).collect();
            let _ = concerns(&noise, next() % 2 == 0, "eth0", None);
        }
    }

    #[test]
    fn loopback() {
        assert_eq!(super::ipv4("lo"), Some(std::net::Ipv4Addr::LOCALHOST));
        assert_eq!(super::index("lo"), Some(1));
        assert_eq!(super::index("no-such-if0"), None);
        assert_eq!(super::mac("lo").as_deref(), Some("000000000000"));
        assert_eq!(super::mac("../etc"), None);
        assert_eq!(super::ipv4("no-such-if0"), None);
        assert_eq!(super::mac("no-such-if0"), None);
        assert_eq!(super::ipv4("a-name-far-too-long-for-ifnamsiz"), None);
        assert_eq!(super::ipv4(""), None);
        assert_eq!(super::ipv4("lo\0x"), None);
    }
}
