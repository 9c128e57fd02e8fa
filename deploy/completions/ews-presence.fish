# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ews_presence_global_optspecs
    string join \n log-format= h/help V/version
end

function __fish_ews_presence_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ews_presence_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ews_presence_using_subcommand
    set -l cmd (__fish_ews_presence_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ews-presence -n "__fish_ews_presence_needs_command" -l log-format -d 'Log lines as text (for people) or JSON objects, one per line (for collectors: journald, Kubernetes). Logs go to standard error' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, with the fields the events carry'"
complete -c ews-presence -n "__fish_ews_presence_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ews-presence -n "__fish_ews_presence_needs_command" -s V -l version -d 'Print version'
complete -c ews-presence -n "__fish_ews_presence_needs_command" -f -a "decode" -d 'Decode a captured EWS response body (file or stdin) into JSON lines, one per envelope. Exits 1 at the first undecodable byte, after printing the frames before it'
complete -c ews-presence -n "__fish_ews_presence_needs_command" -f -a "run" -d 'Run the daemon: hold streaming subscriptions on every configured mailbox and serve presence over HTTP. SIGHUP re-reads the mailbox list; SIGTERM stops'
complete -c ews-presence -n "__fish_ews_presence_needs_command" -f -a "check" -d 'Troubleshoot every configured gateway, in parallel: DNS, TCP, TLS and the certificate, authentication, the server version, Subscribe + Unsubscribe, GetUserAvailability and GetUserOofSettings for a test mailbox. Exits 0 when all pass, 1 otherwise, 2 on a bad configuration'
complete -c ews-presence -n "__fish_ews_presence_needs_command" -f -a "discover" -d 'Ask Autodiscover where each mailbox\'s EWS is, as the daemon would: the endpoint that answered, the EWS URL, the GroupingInformation and the group it lands in, or the error. Exits 0 when every mailbox was placed, 1 otherwise, 2 on a bad configuration'
complete -c ews-presence -n "__fish_ews_presence_needs_command" -f -a "demo" -d 'See the whole product work: a simulated Exchange over HTTPS (with a CA made at start) and the daemon configured against it, in one process'
complete -c ews-presence -n "__fish_ews_presence_needs_command" -f -a "simulate" -d 'Run a simulated Exchange server (EWS endpoint plus a JSON control API under /sim/) with known ground truth, for tests, the demo and benchmarks'
complete -c ews-presence -n "__fish_ews_presence_needs_command" -f -a "generate" -d 'Print shell completions or the man page, made from this command line\'s own definition (packagers install them; deploy/ holds copies)'
complete -c ews-presence -n "__fish_ews_presence_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand decode" -l max-frame-bytes -d 'Largest envelope accepted, in bytes' -r
complete -c ews-presence -n "__fish_ews_presence_using_subcommand decode" -l log-format -d 'Log lines as text (for people) or JSON objects, one per line (for collectors: journald, Kubernetes). Logs go to standard error' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, with the fields the events carry'"
complete -c ews-presence -n "__fish_ews_presence_using_subcommand decode" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand run" -l config -d 'The TOML configuration file' -r -F
complete -c ews-presence -n "__fish_ews_presence_using_subcommand run" -l log-format -d 'Log lines as text (for people) or JSON objects, one per line (for collectors: journald, Kubernetes). Logs go to standard error' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, with the fields the events carry'"
complete -c ews-presence -n "__fish_ews_presence_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand check" -l config -d 'The TOML configuration file' -r -F
complete -c ews-presence -n "__fish_ews_presence_using_subcommand check" -l mailbox -d 'The test mailbox (default: each gateway\'s first configured one)' -r
complete -c ews-presence -n "__fish_ews_presence_using_subcommand check" -l log-format -d 'Log lines as text (for people) or JSON objects, one per line (for collectors: journald, Kubernetes). Logs go to standard error' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, with the fields the events carry'"
complete -c ews-presence -n "__fish_ews_presence_using_subcommand check" -l json -d 'JSON instead of a table'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand discover" -l config -d 'The TOML configuration file' -r -F
complete -c ews-presence -n "__fish_ews_presence_using_subcommand discover" -l log-format -d 'Log lines as text (for people) or JSON objects, one per line (for collectors: journald, Kubernetes). Logs go to standard error' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, with the fields the events carry'"
complete -c ews-presence -n "__fish_ews_presence_using_subcommand discover" -l json -d 'JSON lines instead of text'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand discover" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand demo" -l mailboxes -d 'Simulated mailboxes, all served by the daemon' -r
complete -c ews-presence -n "__fish_ews_presence_using_subcommand demo" -l listen -d 'Where the daemon\'s API listens' -r
complete -c ews-presence -n "__fish_ews_presence_using_subcommand demo" -l churn -d 'Random calendar changes per second' -r
complete -c ews-presence -n "__fish_ews_presence_using_subcommand demo" -l log-format -d 'Log lines as text (for people) or JSON objects, one per line (for collectors: journald, Kubernetes). Logs go to standard error' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, with the fields the events carry'"
complete -c ews-presence -n "__fish_ews_presence_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l listen -d 'Address to listen on' -r
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l mailboxes -d 'Mailboxes user1@DOMAIN … userN@DOMAIN' -r
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l domain -d 'Mail domain' -r
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l seed -d 'Seed for calendars and churn' -r
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l churn -d 'Random calendar changes per second' -r
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l tls-cert -d 'PEM certificate chain: serve HTTPS (with --tls-key)' -r -F
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l tls-key -d 'PEM private key for --tls-cert' -r -F
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l account -d 'The service account' -r
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l auth -d 'How clients authenticate: basic|ntlm|bearer|none (default: basic with --password-file, else none)' -r
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l password-file -d 'File holding the account\'s password (basic and ntlm)' -r -F
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l token-file -d 'File holding the accepted bearer token, read at every request (bearer)' -r -F
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l extended-protection -d 'Extended Protection for NTLM over HTTPS: none|allow|require' -r
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l heartbeat-ms -d 'Heartbeat interval of open streams, in milliseconds' -r
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l minute-ms -d 'Length of one protocol minute (ConnectionTimeout, subscription lifetime), in ms' -r
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l backends -d 'Backend mailbox servers (affinity matters when more than 1)' -r
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l connection-limit -d 'Streaming connections allowed per budget: the account\'s, or each impersonated mailbox\'s copy (Exchange\'s HangingConnectionLimit)' -r
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l subscription-owner -d 'Who owns a subscription: account (Exchange) or impersonated (gromox: streams and Unsubscribe must impersonate the subscription\'s user)' -r
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l mail-tips-max-recipients -d 'MaxRecipientsPerGetMailTipsRequest; 0 turns MailTips off (as gromox says)' -r
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l graph-tenant -d 'The Graph tenant (a domain or an id)' -r
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l graph-client-id -d 'The registered application\'s client id' -r
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l graph-secret-file -d 'File holding the application\'s client secret (else secrets are refused)' -r -F
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l graph-certificate -d 'The application\'s certificate (PEM): client assertions signed by its key are accepted' -r -F
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l graph-notify-ca -d 'CA file to trust when delivering notifications to https:// URLs (else the system roots)' -r -F
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l log-format -d 'Log lines as text (for people) or JSON objects, one per line (for collectors: journald, Kubernetes). Logs go to standard error' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, with the fields the events carry'"
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l autodiscover-pox-only -d 'Answer only POX Autodiscover (autodiscover.xml), as older servers do'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l empty-calendars -d 'Start with empty calendars and automatic replies off'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l status-event-heartbeats -d 'Send a StatusEvent notification per subscription with every heartbeat (as gromox does)'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -l graph -d 'Serve Microsoft Graph too (token endpoint at /{tenant}/oauth2/v2.0/token, Graph at /v1.0/), over the same mailboxes'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand simulate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -l log-format -d 'Log lines as text (for people) or JSON objects, one per line (for collectors: journald, Kubernetes). Logs go to standard error' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, with the fields the events carry'"
complete -c ews-presence -n "__fish_ews_presence_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -f -a "completions" -d 'Completions for a shell (bash, zsh, fish, elvish, powershell)'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -f -a "man" -d 'The man page, ews-presence(1), in roff'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand generate; and __fish_seen_subcommand_from completions" -l log-format -d 'Log lines as text (for people) or JSON objects, one per line (for collectors: journald, Kubernetes). Logs go to standard error' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, with the fields the events carry'"
complete -c ews-presence -n "__fish_ews_presence_using_subcommand generate; and __fish_seen_subcommand_from completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand generate; and __fish_seen_subcommand_from man" -l log-format -d 'Log lines as text (for people) or JSON objects, one per line (for collectors: journald, Kubernetes). Logs go to standard error' -r -f -a "text\t'Human-readable lines'
json\t'One JSON object per line, with the fields the events carry'"
complete -c ews-presence -n "__fish_ews_presence_using_subcommand generate; and __fish_seen_subcommand_from man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "completions" -d 'Completions for a shell (bash, zsh, fish, elvish, powershell)'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "man" -d 'The man page, ews-presence(1), in roff'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand help; and not __fish_seen_subcommand_from decode run check discover demo simulate generate help" -f -a "decode" -d 'Decode a captured EWS response body (file or stdin) into JSON lines, one per envelope. Exits 1 at the first undecodable byte, after printing the frames before it'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand help; and not __fish_seen_subcommand_from decode run check discover demo simulate generate help" -f -a "run" -d 'Run the daemon: hold streaming subscriptions on every configured mailbox and serve presence over HTTP. SIGHUP re-reads the mailbox list; SIGTERM stops'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand help; and not __fish_seen_subcommand_from decode run check discover demo simulate generate help" -f -a "check" -d 'Troubleshoot every configured gateway, in parallel: DNS, TCP, TLS and the certificate, authentication, the server version, Subscribe + Unsubscribe, GetUserAvailability and GetUserOofSettings for a test mailbox. Exits 0 when all pass, 1 otherwise, 2 on a bad configuration'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand help; and not __fish_seen_subcommand_from decode run check discover demo simulate generate help" -f -a "discover" -d 'Ask Autodiscover where each mailbox\'s EWS is, as the daemon would: the endpoint that answered, the EWS URL, the GroupingInformation and the group it lands in, or the error. Exits 0 when every mailbox was placed, 1 otherwise, 2 on a bad configuration'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand help; and not __fish_seen_subcommand_from decode run check discover demo simulate generate help" -f -a "demo" -d 'See the whole product work: a simulated Exchange over HTTPS (with a CA made at start) and the daemon configured against it, in one process'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand help; and not __fish_seen_subcommand_from decode run check discover demo simulate generate help" -f -a "simulate" -d 'Run a simulated Exchange server (EWS endpoint plus a JSON control API under /sim/) with known ground truth, for tests, the demo and benchmarks'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand help; and not __fish_seen_subcommand_from decode run check discover demo simulate generate help" -f -a "generate" -d 'Print shell completions or the man page, made from this command line\'s own definition (packagers install them; deploy/ holds copies)'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand help; and not __fish_seen_subcommand_from decode run check discover demo simulate generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "completions" -d 'Completions for a shell (bash, zsh, fish, elvish, powershell)'
complete -c ews-presence -n "__fish_ews_presence_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "man" -d 'The man page, ews-presence(1), in roff'
