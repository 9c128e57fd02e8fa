//! Packing a gateway's mailboxes into streaming-connection groups: at most
//! `per_connection` subscriptions per group and at most `max_connections` groups
//! (no cap when None).
//! Mailboxes that do not fit are reported, never squeezed past the server's limit.
//! Each group's anchor (for affinity) is its alphabetically first member.

use crate::mailbox::Mailbox;

/// The result of packing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packing {
    /// Groups, each sorted, the anchor first.
    pub groups: Vec<Vec<Mailbox>>,
    /// Mailboxes beyond the connection limit.
    pub overflow: Vec<Mailbox>,
}

/// Packs `mailboxes` (any order, no duplicates).
pub fn pack(
    mut mailboxes: Vec<Mailbox>,
    per_connection: usize,
    max_connections: Option<usize>,
) -> Packing {
    mailboxes.sort();
    let per_connection = per_connection.max(1);
    let capacity = max_connections.map_or(usize::MAX, |m| per_connection.saturating_mul(m));
    let overflow = if mailboxes.len() > capacity {
        mailboxes.split_off(capacity)
    } else {
        Vec::new()
    };
    let groups = mailboxes
        .chunks(per_connection)
        .map(<[Mailbox]>::to_vec)
        .collect();
    Packing { groups, overflow }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxes(n: usize) -> Vec<Mailbox> {
        (0..n)
            .map(|i| Mailbox::parse(&format!("u{i:04}@example.test")).unwrap())
            .collect()
    }

    #[test]
    fn packs_within_limits() {
        let p = pack(boxes(450), 200, Some(10));
        assert_eq!(
            p.groups.iter().map(Vec::len).collect::<Vec<_>>(),
            [200, 200, 50]
        );
        assert!(p.overflow.is_empty());
        assert!(
            p.groups.iter().all(|g| g.windows(2).all(|w| w[0] < w[1])),
            "anchor first"
        );
        let p = pack(boxes(450), 200, Some(2));
        assert_eq!((p.groups.len(), p.overflow.len()), (2, 50));
        assert_eq!(pack(Vec::new(), 200, Some(2)).groups.len(), 0);
        let uncapped = pack(boxes(5000), 200, None);
        assert_eq!((uncapped.groups.len(), uncapped.overflow.len()), (25, 0));
    }
}
