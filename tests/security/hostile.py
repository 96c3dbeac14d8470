"""Hostile values shared by the API tests and the agent-validator tests.

Each of these, used as a name or hostname, must be refused before it can reach a dnsmasq
or udhcpc command line, a dnsmasq config/hosts file, a namespace name or a file path.
"""

SHELL_AND_DNSMASQ = [
    "a;reboot",
    "$(reboot)",
    "`reboot`",
    "a|b",
    "a&b",
    "a>b",
    "a,b",  # a second dhcp-host field
    "a=b",  # a dnsmasq option value
    "a#b",  # a config comment
    "a b",
    "a'b",
    'a"b',
    "a/b",
    "..",
    "../etc",
    "--dhcp-script=/bin/sh",
    "-web",
    "web-",
    "a*",
    "a\\b",
]
CONTROL = [
    "a\nb",
    "a\rb",
    "a\tb",
    "a\x00b",
    "\x00",
    "a\x1bb",
]
LOOK_ALIKES = [
    "\u0430pp",  # Cyrillic a
    "w\u0435b",  # Cyrillic e
    "\uff57\uff45\uff42",  # fullwidth "web"
    "web\u200b",  # zero-width space
    "caf\u00e9",
    "we\u0301b",  # combining accent
    "\u212a",  # Kelvin sign, lowercases to ASCII k in some APIs
]
OVERLONG = [
    "a" * 64,
    "a" * 10 * 1024,
]
EMPTY = [""]

HOSTILE_NAMES = SHELL_AND_DNSMASQ + CONTROL + LOOK_ALIKES + OVERLONG + EMPTY + ["WEB", "a_b"]

HOSTILE_DOMAINS = [
    *(f"{bad}.example" for bad in SHELL_AND_DNSMASQ + CONTROL + LOOK_ALIKES + ["a" * 64]),
    "a..b",
    ".example",
    "a.-b",
    ("a" * 63 + ".") * 4 + "a",  # 256 characters
    "x" * 10 * 1024,
]

HOSTILE_USERNAMES = [
    *(v for v in SHELL_AND_DNSMASQ + CONTROL + LOOK_ALIKES if v not in ("web-",)),
    "a" * 151,
    "a" * 10 * 1024,
    "",
]

HOSTILE_MACS = [
    "zz:zz:zz:zz:zz:zz",
    "02:00:00:00:00",
    "02:00:00:00:00:01:02",
    "0200.0000.0001",
    "02:00:00:00:00:01;reboot",
    "02:00:00:00:00:01,192.168.10.9",
    "02:00:00:00:00:01\nx",
    "02:00:00:00:00:0\x00",
    "00:00:00:00:00:00",  # all-zero
    "01:00:5e:00:00:01",  # multicast
    "ff:ff:ff:ff:ff:ff",  # broadcast
    "\uff10\uff12:00:00:00:00:01",  # fullwidth digits
    "x" * 10 * 1024,
]

HOSTILE_IPS = [
    "999.1.1.1",
    "192.168.10.5;reboot",
    "192.168.10.5,02:00:00:00:00:01",
    "192.168.10.5\n192.168.10.6",
    "192.168.10.5/24",
    "::1",
    "192.168.10.0",  # network address
    "192.168.10.255",  # broadcast
    "10.0.0.5",  # outside the CIDR
    "\uff11\uff19\uff12.168.10.5",  # fullwidth digits
    "x" * 10 * 1024,
]
