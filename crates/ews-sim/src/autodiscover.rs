//! The simulator's Autodiscover, consistent with `--backends K`: SOAP GetUserSettings
//! at `POST /autodiscover/autodiscover.svc` and POX at `POST /autodiscover/autodiscover.xml`.
//! Backend `n` has its own `GroupingInformation` (`[DOMAIN]-DAGn`) and EWS URL path
//! (`/mbxNN/EWS/Exchange.asmx`, all on this listener); an address at
//! `legacy.DOMAIN` redirects to the same user at `DOMAIN`; `loop-a.DOMAIN` and
//! `loop-b.DOMAIN` redirect to each other, and `url-loop.DOMAIN` to this very
//! Autodiscover URL (redirect loops); unknown users get `InvalidUser` (POX: error 500).

use ews::ns::{self, Ns};
use ews::xml_tree::Tree;
use ews::xml_write::XmlWriter;

use super::Sim;

/// Autodiscover operations as counted in `/sim/stats` and named by faults.
pub const OPERATIONS: [&str; 2] = ["GetUserSettings", "Autodiscover(POX)"];

/// Users per GetUserSettings request, as Exchange limits it.
const MAX_USERS: usize = 100;

/// What the simulator knows of one address.
enum Found {
    /// Hosted here on this backend.
    Backend(usize),
    /// Ask again for this address.
    Redirect(String),
    /// Ask again at our own Autodiscover URL.
    RedirectHere,
    /// Not a user here.
    Unknown,
}

impl Sim {
    /// The EWS URL path of backend `n`.
    pub fn backend_ews_path(&self, n: usize) -> String {
        format!("/mbx{:02}/EWS/Exchange.asmx", n + 1)
    }

    /// The backend an EWS URL path names (`/mbxNN/EWS/Exchange.asmx`).
    pub fn backend_of_path(&self, path: &str) -> Option<usize> {
        let rest = path.strip_prefix("/mbx")?;
        let (digits, tail) = rest.split_once('/')?;
        let n: usize = digits.parse().ok()?;
        (tail.eq_ignore_ascii_case("EWS/Exchange.asmx") && (1..=self.config.backends).contains(&n))
            .then(|| n - 1)
    }

    /// Backend `n`'s `GroupingInformation`.
    pub fn grouping_of(&self, n: usize) -> String {
        format!(
            "{}-DAG{}",
            self.directory
                .domain()
                .split('.')
                .next()
                .unwrap_or("SIM")
                .to_ascii_uppercase(),
            n + 1
        )
    }

    fn find(&self, address: &str) -> Found {
        let address = address.trim().to_ascii_lowercase();
        if let Some(index) = self.directory.lookup(&address) {
            return Found::Backend(self.backend_of(index));
        }
        let ours = self.directory.domain();
        let Some((local, domain)) = address.split_once('@') else {
            return Found::Unknown;
        };
        let Some((label, rest)) = domain.split_once('.') else {
            return Found::Unknown;
        };
        if rest != ours {
            return Found::Unknown;
        }
        match label {
            "legacy" => Found::Redirect(format!("{local}@{ours}")),
            "loop-a" => Found::Redirect(format!("{local}@loop-b.{ours}")),
            "loop-b" => Found::Redirect(format!("{local}@loop-a.{ours}")),
            "url-loop" => Found::RedirectHere,
            _ => Found::Unknown,
        }
    }
}

/// Answers a SOAP GetUserSettings body; `base` is `https://host:port` as the client
/// reached us. HTTP status and XML.
pub fn soap(sim: &Sim, base: &str, body: &str) -> (u16, String) {
    let users = match soap_users(body) {
        Ok(users) => users,
        Err(message) => return (500, soap_fault(&message)),
    };
    let mut w = XmlWriter::new();
    w.open(
        "s:Envelope",
        &[
            ("xmlns:s", ns::SOAP),
            ("xmlns:i", "http://www.w3.org/2001/XMLSchema-instance"),
        ],
    );
    w.open("s:Header", &[]);
    w.leaf_with(
        "a:Action",
        &[("xmlns:a", "http://www.w3.org/2005/08/addressing"), ("s:mustUnderstand", "1")],
        "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettingsResponse",
    );
    w.close("s:Header");
    w.open("s:Body", &[]);
    w.open(
        "GetUserSettingsResponseMessage",
        &[("xmlns", ns::AUTODISCOVER)],
    );
    w.open("Response", &[]);
    if users.is_empty() || users.len() > MAX_USERS {
        w.leaf("ErrorCode", "InvalidRequest");
        w.leaf(
            "ErrorMessage",
            &format!(
                "A request may name 1 to {MAX_USERS} users; it named {}.",
                users.len()
            ),
        );
        w.empty("UserResponses", &[]);
    } else {
        w.leaf("ErrorCode", "NoError");
        w.empty("ErrorMessage", &[]);
        w.open("UserResponses", &[]);
        for user in &users {
            w.open("UserResponse", &[]);
            match sim.find(user) {
                Found::Backend(n) => {
                    w.leaf("ErrorCode", "NoError");
                    w.leaf("ErrorMessage", "No error.");
                    w.empty("RedirectTarget", &[("i:nil", "true")]);
                    w.empty("UserSettingErrors", &[]);
                    w.open("UserSettings", &[]);
                    let url = format!("{base}{}", sim.backend_ews_path(n));
                    for (name, value) in [
                        ("ExternalEwsUrl", url.as_str()),
                        ("InternalEwsUrl", url.as_str()),
                        ("GroupingInformation", &sim.grouping_of(n)),
                        (
                            "EwsSupportedSchemas",
                            "Exchange2007, Exchange2007_SP1, Exchange2010, Exchange2010_SP1, Exchange2010_SP2, Exchange2013, Exchange2013_SP1, Exchange2016",
                        ),
                    ] {
                        w.open("UserSetting", &[("i:type", "StringSetting")]);
                        w.leaf("Name", name);
                        w.leaf("Value", value);
                        w.close("UserSetting");
                    }
                    w.close("UserSettings");
                }
                Found::Redirect(target) => {
                    w.leaf("ErrorCode", "RedirectAddress");
                    w.leaf("ErrorMessage", "Redirection address.");
                    w.leaf("RedirectTarget", &target);
                    w.empty("UserSettingErrors", &[]);
                    w.empty("UserSettings", &[]);
                }
                Found::RedirectHere => {
                    w.leaf("ErrorCode", "RedirectUrl");
                    w.leaf("ErrorMessage", "Redirection URL.");
                    w.leaf(
                        "RedirectTarget",
                        &format!("{base}/autodiscover/autodiscover.svc"),
                    );
                    w.empty("UserSettingErrors", &[]);
                    w.empty("UserSettings", &[]);
                }
                Found::Unknown => {
                    w.leaf("ErrorCode", "InvalidUser");
                    w.leaf("ErrorMessage", &format!("Invalid user: '{user}'"));
                    w.empty("RedirectTarget", &[("i:nil", "true")]);
                    w.empty("UserSettingErrors", &[]);
                    w.empty("UserSettings", &[]);
                }
            }
            w.close("UserResponse");
        }
        w.close("UserResponses");
    }
    w.close("Response");
    w.close("GetUserSettingsResponseMessage");
    w.close("s:Body");
    w.close("s:Envelope");
    (200, w.finish())
}

fn soap_users(body: &str) -> Result<Vec<String>, String> {
    let tree = Tree::parse(body).map_err(|e| format!("not XML: {e}"))?;
    let root = tree.root();
    let request = root
        .child_in(Ns::Soap, "Body")
        .and_then(|b| b.child_in(Ns::Autodiscover, "GetUserSettingsRequestMessage"))
        .and_then(|m| m.child_in(Ns::Autodiscover, "Request"))
        .ok_or("not a GetUserSettings request")?;
    Ok(request
        .child_in(Ns::Autodiscover, "Users")
        .map(|users| {
            users
                .children()
                .filter_map(|u| u.child_in(Ns::Autodiscover, "Mailbox"))
                .map(|m| m.text().trim().to_owned())
                .collect()
        })
        .unwrap_or_default())
}

fn soap_fault(message: &str) -> String {
    let mut w = XmlWriter::new();
    w.open("s:Envelope", &[("xmlns:s", ns::SOAP)]);
    w.open("s:Body", &[]);
    w.open("s:Fault", &[]);
    w.leaf("faultcode", "s:Client");
    w.leaf("faultstring", message);
    w.close("s:Fault");
    w.close("s:Body");
    w.close("s:Envelope");
    w.finish()
}

/// Answers a POX request body (one address).
pub fn pox(sim: &Sim, base: &str, body: &str) -> (u16, String) {
    let address = Tree::parse(body).ok().and_then(|tree| {
        let root = tree.root();
        root.child_in(Ns::PoxRequest, "Request")
            .and_then(|r| r.child_in(Ns::PoxRequest, "EMailAddress"))
            .map(|e| e.text().trim().to_owned())
    });
    let mut w = XmlWriter::new();
    w.raw("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    w.open("Autodiscover", &[("xmlns", ns::POX_RESPONSE)]);
    w.open("Response", &[("xmlns", ns::POX_OUTLOOK)]);
    let error = |w: &mut XmlWriter, code: &str, message: &str| {
        w.open("Error", &[("Time", "00:00:00.0000000"), ("Id", "1")]);
        w.leaf("ErrorCode", code);
        w.leaf("Message", message);
        w.leaf("DebugData", "");
        w.close("Error");
    };
    match address.as_deref().map(|a| (a, sim.find(a))) {
        None => error(&mut w, "600", "Invalid Request"),
        Some((_, Found::Unknown)) => error(&mut w, "500", "The e-mail address cannot be found."),
        Some((_, Found::Redirect(target))) => {
            w.open("Account", &[]);
            w.leaf("AccountType", "email");
            w.leaf("Action", "redirectAddr");
            w.leaf("RedirectAddr", &target);
            w.close("Account");
        }
        Some((_, Found::RedirectHere)) => {
            w.open("Account", &[]);
            w.leaf("AccountType", "email");
            w.leaf("Action", "redirectUrl");
            w.leaf(
                "RedirectUrl",
                &format!("{base}/autodiscover/autodiscover.xml"),
            );
            w.close("Account");
        }
        Some((address, Found::Backend(n))) => {
            let url = format!("{base}{}", sim.backend_ews_path(n));
            w.open("User", &[]);
            w.leaf("AutoDiscoverSMTPAddress", address);
            w.close("User");
            w.open("Account", &[]);
            w.leaf("AccountType", "email");
            w.leaf("Action", "settings");
            for kind in ["EXCH", "EXPR"] {
                w.open("Protocol", &[]);
                w.leaf("Type", kind);
                w.leaf("EwsUrl", &url);
                if kind == "EXPR" {
                    w.leaf("GroupingInformation", &sim.grouping_of(n));
                }
                w.close("Protocol");
            }
            w.close("Account");
        }
    }
    w.close("Response");
    w.close("Autodiscover");
    (200, w.finish())
}
