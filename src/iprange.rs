//! Address ranges in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or a
//! bare address meaning just that address), for the trusted-proxy list and
//! the special-purpose address tables. IPv4-mapped IPv6 addresses are
//! compared as the IPv4 address they carry.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix_length: u8,
}

impl IpRange {
    /// Whether `address` is in the range; an IPv4-mapped IPv6 address is
    /// also tried as the IPv4 address it carries.
    pub fn contains(&self, address: IpAddr) -> bool {
        self.contains_exactly(address) || self.contains_exactly(address.to_canonical())
    }

    fn contains_exactly(&self, address: IpAddr) -> bool {
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = ipv4_mask(self.prefix_length);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = ipv6_mask(self.prefix_length);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }

    /// Whether the network address has bits set after the prefix
    /// (`10.0.0.1/8`): harmless for matching, a typo in a vendored table.
    pub fn has_host_bits(&self) -> bool {
        match self.network {
            IpAddr::V4(v4) => u32::from(v4) & !ipv4_mask(self.prefix_length) != 0,
            IpAddr::V6(v6) => u128::from(v6) & !ipv6_mask(self.prefix_length) != 0,
        }
    }

    pub fn network(&self) -> IpAddr {
        self.network
    }
}

fn ipv4_mask(prefix_length: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix_length)).unwrap_or(0)
}

fn ipv6_mask(prefix_length: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix_length)).unwrap_or(0)
}

impl FromStr for IpRange {
    type Err = String;

    fn from_str(text: &str) -> Result<IpRange, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.trim().parse().map_err(|_| format!("{address:?} is not an IP address"))?;
        let max_length = if network.is_ipv4() { 32 } else { 128 };
        let prefix_length = match prefix {
            None => max_length,
            Some(prefix) => prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|length| *length <= max_length)
                .ok_or_else(|| format!("{prefix:?} is not a prefix length (0 to {max_length})"))?,
        };
        Ok(IpRange { network, prefix_length })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_length)
    }
}

// ---- special-purpose addresses (IANA registries): what a public URL must
// never reach (the image fetcher, the upstream proxy connector).

/// IANA's IPv4 Special-Purpose Address Registry, the columns hajimi uses.
const IPV4_SPECIAL_REGISTRY_CSV: &str = include_str!("../assets/iana/ipv4-special-registry.csv");
/// IANA's IPv6 Special-Purpose Address Registry, the columns hajimi uses.
const IPV6_SPECIAL_REGISTRY_CSV: &str = include_str!("../assets/iana/ipv6-special-registry.csv");
/// The header line both registry files carry after their comment.
const SPECIAL_REGISTRY_HEADER: &str = "Address Block,Name,RFC,Globally Reachable";

/// The "Globally Reachable" column of a special-purpose registry row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GloballyReachable {
    True,
    False,
    /// IANA's "N/A": deprecated blocks and transition mechanisms whose
    /// reachability the registry does not vouch for.
    NotApplicable,
}

/// One row of a special-purpose address registry: a network and whether
/// addresses in it are globally reachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialPurposeBlock {
    pub range: IpRange,
    pub globally_reachable: GloballyReachable,
}

/// Parses a vendored registry file: `#` comment lines, then the header,
/// then one `Address Block,Name,RFC,Globally Reachable` row per block. The
/// middle columns (quoted CSV, possibly with commas) are only documentation;
/// the block is the first field and the reachability the last.
pub fn parse_special_purpose_registry(csv: &str) -> Result<Vec<SpecialPurposeBlock>, String> {
    let mut header_seen = false;
    let mut blocks = Vec::new();
    for (index, line) in csv.lines().enumerate() {
        let line_number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !header_seen {
            if line != SPECIAL_REGISTRY_HEADER {
                return Err(format!("line {line_number}: expected the header {SPECIAL_REGISTRY_HEADER:?}"));
            }
            header_seen = true;
            continue;
        }
        let (block, rest) = line.split_once(',').ok_or(format!("line {line_number}: not a CSV row"))?;
        let (_, reachable) = rest.rsplit_once(',').ok_or(format!("line {line_number}: fewer than four columns"))?;
        if !block.contains('/') {
            return Err(format!("line {line_number}: {block:?} is not address/prefix"));
        }
        let range: IpRange = block.parse().map_err(|reason| format!("line {line_number}: {reason}"))?;
        if range.has_host_bits() {
            return Err(format!("line {line_number}: {block} has bits set after the prefix"));
        }
        let globally_reachable = match reachable {
            "True" => GloballyReachable::True,
            "False" => GloballyReachable::False,
            "N/A" => GloballyReachable::NotApplicable,
            other => return Err(format!("line {line_number}: Globally Reachable is {other:?}, not True/False/N/A")),
        };
        blocks.push(SpecialPurposeBlock { range, globally_reachable });
    }
    if !header_seen {
        return Err("no header line".to_owned());
    }
    Ok(blocks)
}

/// Every row of both vendored registries, parsed on first use. A unit test
/// parses them, so the panic cannot fire in a build whose tests pass.
fn special_purpose_blocks() -> &'static [SpecialPurposeBlock] {
    static BLOCKS: OnceLock<Vec<SpecialPurposeBlock>> = OnceLock::new();
    BLOCKS.get_or_init(|| {
        [IPV4_SPECIAL_REGISTRY_CSV, IPV6_SPECIAL_REGISTRY_CSV]
            .into_iter()
            .flat_map(|csv| {
                parse_special_purpose_registry(csv)
                    .unwrap_or_else(|error| panic!("a vendored IANA special-purpose registry is malformed: {error}"))
            })
            .collect()
    })
}

/// The IPv4 address an IPv6 one reaches: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`, deprecated; all of `::/96`, so `::` and
/// `::1` become `0.0.0.0` and `0.0.0.1`, refused as "this network") and the
/// NAT64 well-known prefix `64:ff9b::/96` (globally reachable itself, so
/// the embedded address decides).
fn ipv4_reached_through(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = v6.segments();
    let embedded = Ipv4Addr::from((u32::from(segments[6]) << 16) | u32::from(segments[7]));
    match segments[..6] {
        [0, 0, 0, 0, 0, 0 | 0xffff] | [0x64, 0xff9b, 0, 0, 0, 0] => Some(embedded),
        _ => None,
    }
}

/// Whether an address is one a public URL must never reach: inside any
/// special-purpose registry block that is not globally reachable (False or
/// N/A — also when a globally reachable block sits inside it, as
/// `192.0.0.9/32` does in `192.0.0.0/24`: an image fetcher has no business
/// with those), multicast, or deprecated IPv6 site-local (`fec0::/10`).
pub fn is_private_address(address: IpAddr) -> bool {
    let in_non_global_block = |address: IpAddr| {
        special_purpose_blocks()
            .iter()
            .any(|block| block.globally_reachable != GloballyReachable::True && block.range.contains(address))
    };
    match address {
        IpAddr::V4(v4) => v4.is_multicast() || in_non_global_block(address),
        IpAddr::V6(v6) => {
            if let Some(v4) = ipv4_reached_through(v6) {
                return is_private_address(IpAddr::V4(v4));
            }
            let site_local = (v6.segments()[0] & 0xffc0) == 0xfec0;
            v6.is_multicast() || site_local || in_non_global_block(address)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_are_refused() {
        let cases = [
            ("127.0.0.1", true),
            ("10.1.2.3", true),
            ("172.16.0.1", true),
            ("192.168.1.1", true),
            ("169.254.169.254", true),
            ("100.64.0.1", true),
            ("0.0.0.0", true),
            ("::1", true),
            ("fe80::1", true),
            ("fd00::1", true),
            ("::ffff:127.0.0.1", true),
            ("64:ff9b::7f00:1", true),
            ("64:ff9b::808:808", false),
            ("2002:a9fe:a9fe::1", true),
            ("::127.0.0.1", true),
            ("fec0::1", true),
            ("ff02::1", true),
            ("198.18.0.1", true),
            ("240.0.0.1", true),
            ("224.0.0.1", true),
            ("8.8.8.8", false),
            ("2001:4860:4860::8888", false),
            // From IANA's registries rather than the standard library's helpers:
            ("192.0.0.1", true),          // IETF Protocol Assignments
            ("192.0.0.9", true),          // PCP anycast is reachable, but inside 192.0.0.0/24
            ("192.88.99.1", true),        // deprecated 6to4 relay anycast (N/A)
            ("198.51.100.1", true),       // TEST-NET-2
            ("255.255.255.255", true),    // limited broadcast
            ("64:ff9b:1::1", true),       // local-use IPv4/IPv6 translation
            ("64:ff9b:1::808:808", true), // local-use, whatever it embeds
            ("2001:db8::1", true),        // documentation
            ("3fff::1", true),            // documentation
            ("2001::1", true),            // Teredo (N/A)
            ("2002:808:808::1", true),    // 6to4 (N/A), even around a public address
            ("100::1", true),             // discard-only
            ("5f00::1", true),            // SRv6 SIDs
            ("::", true),
            ("::ffff:8.8.8.8", false),
            ("::8.8.8.8", false),
            ("1.1.1.1", false),
            ("192.0.3.1", false),
            ("2606:4700::1111", false),
            ("2001:4:112::1", true), // AS112-v6 is reachable, but inside 2001::/23
        ];
        for (address, private) in cases {
            assert_eq!(is_private_address(address.parse().unwrap()), private, "{address}");
        }
    }

    #[test]
    fn the_vendored_iana_registries_parse_completely() {
        let cases = [("ipv4", IPV4_SPECIAL_REGISTRY_CSV, 25, true), ("ipv6", IPV6_SPECIAL_REGISTRY_CSV, 25, false)];
        for (registry, csv, expected_rows, is_ipv4) in cases {
            let blocks = parse_special_purpose_registry(csv).unwrap_or_else(|error| panic!("{registry}: {error}"));
            assert_eq!(blocks.len(), expected_rows, "{registry}");
            let data_lines = csv.lines().filter(|line| !line.trim().is_empty() && !line.starts_with('#')).count();
            assert_eq!(data_lines, expected_rows + 1, "{registry}: every row but the header becomes a block");
            assert!(
                blocks.iter().all(|block| block.range.network().is_ipv4() == is_ipv4),
                "{registry}: address family"
            );
        }
        assert_eq!(special_purpose_blocks().len(), 50);
    }

    #[test]
    fn malformed_registry_rows_are_rejected() {
        let header = SPECIAL_REGISTRY_HEADER;
        let cases = [
            (format!("{header}\n10.0.0.0/8,Private-Use,[RFC1918],False"), true),
            (format!("# comment\n{header}\n0.0.0.0/8,\"\"\"This network\"\"\",\"[RFC791], Section 3.2\",False"), true),
            ("10.0.0.0/8,Private-Use,[RFC1918],False".to_owned(), false),
            (format!("{header}\n10.0.0.1/8,Private-Use,[RFC1918],False"), false),
            (format!("{header}\n10.0.0.0/33,Private-Use,[RFC1918],False"), false),
            (format!("{header}\n10.0.0.0,Private-Use,[RFC1918],False"), false),
            (format!("{header}\n10.0.0.0/8,Private-Use,[RFC1918],False [4]"), false),
            (format!("{header}\n10.0.0.0/8 [2],Private-Use,[RFC1918],False"), false),
            (format!("{header}\n10.0.0.0/8"), false),
        ];
        for (csv, parses) in cases {
            assert_eq!(parse_special_purpose_registry(&csv).is_ok(), parses, "{csv}");
        }
    }

    #[test]
    fn ranges_contain_what_they_should() {
        let cases = [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("10.1.2.3", "10.1.2.3", true),
            ("10.1.2.3", "10.1.2.4", false),
            ("0.0.0.0/0", "8.8.8.8", true),
            ("0.0.0.0/0", "::1", false),
            ("10.0.0.0/8", "::ffff:10.0.0.1", true),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("::/0", "2606:4700::1111", true),
            ("fe80::1", "fe80::1", true),
            ("::ffff:0:0/96", "::ffff:1.2.3.4", true),
            ("::ffff:0:0/96", "1.2.3.4", false),
        ];
        for (range, address, expected) in cases {
            let range: IpRange = range.parse().unwrap();
            assert_eq!(range.contains(address.parse().unwrap()), expected, "{range} ∋ {address}");
        }
    }

    #[test]
    fn host_bits_are_noticed() {
        for (text, expected) in
            [("10.0.0.0/8", false), ("10.0.0.1/8", true), ("2001:db8::/32", false), ("2001:db8::1/32", true)]
        {
            assert_eq!(text.parse::<IpRange>().unwrap().has_host_bits(), expected, "{text}");
        }
    }

    #[test]
    fn malformed_ranges_are_refused() {
        for text in ["", "10.0.0.0/33", "::/129", "10.0.0/8", "x", "10.0.0.0/-1", "10.0.0.0/"] {
            assert!(text.parse::<IpRange>().is_err(), "{text:?}");
        }
    }
}
