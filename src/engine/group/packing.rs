//! Packing a gateway's mailboxes into streaming-connection groups: mailboxes of one
//! [`GroupKey`] only (EWS URL and `GroupingInformation`), at most `per_connection`
//! subscriptions per group and at most `max_connections` groups (no cap when None).
//! Mailboxes that do not fit are reported, never squeezed past the server's limit.
//! Each group's anchor (for affinity) is its alphabetically first member.

use crate::engine::gateway::endpoints::GroupKey;
use common::mailbox::Mailbox;

/// The result of packing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packing {
    /// Groups with their key, each sorted, the anchor first.
    pub groups: Vec<(GroupKey, Vec<Mailbox>)>,
    /// Mailboxes beyond the connection limit.
    pub overflow: Vec<Mailbox>,
}

/// Packs `mailboxes` (any order, no duplicates), each with its key.
pub fn pack(
    mut mailboxes: Vec<(GroupKey, Mailbox)>,
    per_connection: usize,
    max_connections: Option<usize>,
) -> Packing {
    mailboxes.sort();
    let per_connection = per_connection.max(1);
    let mut groups: Vec<(GroupKey, Vec<Mailbox>)> = Vec::new();
    let mut overflow = Vec::new();
    for (key, mailbox) in mailboxes {
        let full = max_connections.is_some_and(|cap| groups.len() >= cap);
        match groups.last_mut() {
            Some((last, members)) if *last == key && members.len() < per_connection => {
                members.push(mailbox);
            }
            _ if full => overflow.push(mailbox),
            _ => groups.push((key, vec![mailbox])),
        }
    }
    Packing { groups, overflow }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(grouping: Option<&str>) -> GroupKey {
        GroupKey {
            url: "https://mail.example.test/EWS/Exchange.asmx".into(),
            grouping: grouping.map(str::to_owned),
        }
    }

    fn boxes(n: usize) -> Vec<(GroupKey, Mailbox)> {
        (0..n)
            .map(|i| {
                (
                    key(None),
                    Mailbox::parse(&format!("u{i:04}@example.test")).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn packs_within_limits() {
        let p = pack(boxes(450), 200, Some(10));
        assert_eq!(
            p.groups.iter().map(|(_, g)| g.len()).collect::<Vec<_>>(),
            [200, 200, 50]
        );
        assert!(p.overflow.is_empty());
        assert!(
            p.groups
                .iter()
                .all(|(_, g)| g.windows(2).all(|w| w[0] < w[1])),
            "anchor first"
        );
        let p = pack(boxes(450), 200, Some(2));
        assert_eq!((p.groups.len(), p.overflow.len()), (2, 50));
        assert_eq!(pack(Vec::new(), 200, Some(2)).groups.len(), 0);
        let uncapped = pack(boxes(5000), 200, None);
        assert_eq!((uncapped.groups.len(), uncapped.overflow.len()), (25, 0));
    }

    #[test]
    fn groups_never_mix_keys() {
        let mixed: Vec<(GroupKey, Mailbox)> = (0..10)
            .map(|i| {
                let grouping = if i % 3 == 0 { "DAG1" } else { "DAG2" };
                (
                    key(Some(grouping)),
                    Mailbox::parse(&format!("u{i}@example.test")).unwrap(),
                )
            })
            .collect();
        let p = pack(mixed, 3, None);
        // DAG1: 4 mailboxes (3 + 1); DAG2: 6 (3 + 3).
        assert_eq!(
            p.groups
                .iter()
                .map(|(k, g)| (k.grouping.clone().unwrap(), g.len()))
                .collect::<Vec<_>>(),
            [
                ("DAG1".into(), 3),
                ("DAG1".into(), 1),
                ("DAG2".into(), 3),
                ("DAG2".into(), 3)
            ]
        );
    }
}
