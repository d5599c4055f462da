// The pure half of network-domain: patterns, IP addresses and their classes, and the two-stage
// decision. No network: the proxy's own tests drive real connections.

import assert from "node:assert/strict";
import {
  type AddressClass,
  classifyAddress,
  decideAddresses,
  decideConnection,
  type DomainRules,
  formatDomainPattern,
  InvalidDomainPatternError,
  normalizeHost,
  normalizeIpAddress,
  parseDomainPattern,
  parseHostPort,
  suggestPermission,
} from "../policy/network_domain.ts";

function rules(allow: string[], deny: string[] = []): DomainRules {
  return { allow: allow.map(parseDomainPattern), deny: deny.map(parseDomainPattern) };
}

Deno.test("parseDomainPattern() normalises names, wildcards, addresses and ports", async (t) => {
  const cases: [string, string, string, number[] | undefined][] = [
    ["registry.npmjs.org", "host", "registry.npmjs.org", undefined],
    ["Registry.NPMjs.ORG.", "host", "registry.npmjs.org", undefined],
    ["localhost", "host", "localhost", undefined],
    ["_dmarc.example.com", "host", "_dmarc.example.com", undefined],
    ["xn--bcher-kva.example", "host", "xn--bcher-kva.example", undefined],
    ["example.com:8080", "host", "example.com", [8080]],
    ["example.com:80,443,80", "host", "example.com", [80, 443]],
    ["*.example.com", "wildcard", "*.example.com", undefined],
    ["*.Example.COM.:8443", "wildcard", "*.example.com", [8443]],
    ["127.0.0.1", "ip", "127.0.0.1", undefined],
    ["127.0.0.1:5432", "ip", "127.0.0.1", [5432]],
    ["::1", "ip", "::1", undefined],
    ["[::1]", "ip", "::1", undefined],
    ["[0:0:0:0:0:0:0:1]:8080", "ip", "::1", [8080]],
    ["2001:DB8::1", "ip", "2001:db8::1", undefined],
    ["[::ffff:10.0.0.1]:65535", "ip", "::ffff:10.0.0.1", [65535]],
    ["fd00:ec2::254", "ip", "fd00:ec2::254", undefined],
  ];
  for (const [text, kind, host, ports] of cases) {
    await t.step(text, () => {
      assert.deepEqual(parseDomainPattern(text), { kind, host, ports });
    });
  }
});

Deno.test("parseDomainPattern() refuses malformed patterns with the value named", async (t) => {
  const cases: [string, RegExp][] = [
    ["", /it is empty/],
    [" example.com", /space/],
    ["example .com", /space/],
    ["https://example.com", /without a scheme/],
    ["example.com/path", /without a path/],
    ["example.com?q", /without a path/],
    ["user@example.com", /user name/],
    ["*", /bare \*/],
    ["*:443", /bare \*/],
    ["*.", /expected a host name after \*\./],
    ["*..", /expected a host name after \*\./],
    ["a.*.b", /\* may only start a pattern/],
    ["*.*.example.com", /\* may only start a pattern/],
    ["*example.com", /\* may only start a pattern/],
    ["example.com:0", /from 1 to 65535/],
    ["example.com:65536", /from 1 to 65535/],
    ["example.com:http", /from 1 to 65535/],
    ["example.com:", /from 1 to 65535/],
    ["example.com:080", /from 1 to 65535/],
    ["example.com:80,", /from 1 to 65535/],
    ["-example.com", /invalid host name/],
    ["example-.com", /invalid host name/],
    ["exa..mple.com", /invalid host name/],
    ["bücher.example", /invalid host name/],
    [`${"a".repeat(64)}.example`, /invalid host name/],
    ["256.0.0.1", /looks like an IPv4 address/],
    ["127.1", /looks like an IPv4 address/],
    ["010.0.0.1", /looks like an IPv4 address/],
    ["0x7f.0.0.1", /looks like an IPv4 address/],
    ["2130706433", /looks like an IPv4 address/],
    ["example.0x10", /looks like an IPv4 address/],
    ["1:2:3", /invalid IPv6 address/],
    ["::1::2", /invalid IPv6 address/],
    ["fe80::1%eth0", /invalid IPv6 address/],
    ["[::1", /no closing \]/],
    ["[::1]x", /expected :PORT after \]/],
    ["[1.2.3.4]", /invalid IPv6 address/],
    ["[::1]:0", /from 1 to 65535/],
    ["1:2:3:4:5:6:7:8:443", /in brackets to give a port: \[1:2:3:4:5:6:7:8\]:443/],
    ["2001:db8::1:443", /ambiguous: write \[2001:db8::1:443\] .* \[2001:db8::1\]:443/],
  ];
  for (const [text, why] of cases) {
    await t.step(JSON.stringify(text), () => {
      assert.throws(() => parseDomainPattern(text), (error: unknown) => {
        assert.ok(error instanceof InvalidDomainPatternError);
        assert.equal(error.value, text);
        assert.ok(
          error.message.startsWith(`Invalid network domain pattern ${JSON.stringify(text)}: `),
        );
        assert.match(error.message, why);
        assert.doesNotMatch(error.message, /\.$/);
        return true;
      });
    });
  }
});

Deno.test("formatDomainPattern() gives text that parses back to the same pattern", () => {
  const texts = [
    "example.com",
    "example.com:8080",
    "example.com:80,443",
    "*.example.com",
    "*.example.com:8443",
    "10.0.0.1",
    "10.0.0.1:5432",
    "::1",
    "[::1]:8080",
    "[2001:db8::1:443]",
    "[64:ff9b::7f00:1]",
    "[::ffff:1.2.3.4]:443",
  ];
  for (const text of texts) {
    const pattern = parseDomainPattern(text);
    assert.equal(formatDomainPattern(pattern), text);
    assert.deepEqual(parseDomainPattern(formatDomainPattern(pattern)), pattern);
  }
  assert.equal(formatDomainPattern(parseDomainPattern("EXAMPLE.com.:443")), "example.com:443");
});

Deno.test("normalizeIpAddress() writes IPv6 in RFC 5952 form", () => {
  const cases: [string, string | undefined][] = [
    ["2001:db8:0:0:0:0:2:1", "2001:db8::2:1"],
    ["2001:DB8:0:0:0:0:2:1", "2001:db8::2:1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["0:0:0:0:0:0:0:0", "::"],
    ["0000:0000::0001", "::1"],
    ["1::", "1::"],
    ["::ffff:7f00:1", "::ffff:127.0.0.1"],
    ["64:ff9b::127.0.0.1", "64:ff9b::7f00:1"],
    ["[fe80::1]", "fe80::1"],
    ["1.2.3.4", "1.2.3.4"],
    ["1.2.3.04", undefined],
    ["1.2.3", undefined],
    ["12345::", undefined],
    ["1:2:3:4:5:6:7:8:9", undefined],
    ["1::2:3:4:5:6:7:8", undefined],
    ["::1.2.3.4:5", undefined],
    ["[1.2.3.4]", undefined],
    ["example.com", undefined],
  ];
  for (const [text, canonical] of cases) assert.equal(normalizeIpAddress(text), canonical, text);
});

Deno.test("classifyAddress() sorts IPv4 and IPv6 addresses into their networks", async (t) => {
  const cases: [string, AddressClass][] = [
    ["0.0.0.0", "unspecified"],
    ["0.1.2.3", "unspecified"],
    ["10.0.0.1", "private"],
    ["100.64.0.1", "private"],
    ["100.127.255.255", "private"],
    ["100.128.0.1", "public"],
    ["100.100.100.200", "metadata"],
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["169.254.1.1", "link-local"],
    ["169.254.169.254", "metadata"],
    ["169.254.170.2", "metadata"],
    ["168.63.129.16", "metadata"],
    ["172.15.255.255", "public"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["172.32.0.1", "public"],
    ["192.0.0.8", "reserved"],
    ["192.0.2.1", "public"],
    ["192.168.1.1", "private"],
    ["198.18.0.1", "public"],
    ["198.19.255.255", "public"],
    ["198.20.0.1", "public"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.250", "multicast"],
    ["240.0.0.1", "reserved"],
    ["255.255.255.255", "reserved"],
    ["1.1.1.1", "public"],
    ["8.8.8.8", "public"],
    ["::", "unspecified"],
    ["::1", "loopback"],
    ["[::1]", "loopback"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:10.1.2.3", "private"],
    ["::ffff:169.254.169.254", "metadata"],
    ["::ffff:8.8.8.8", "public"],
    ["64:ff9b::7f00:1", "loopback"],
    ["64:ff9b::a9fe:a9fe", "metadata"],
    ["64:ff9b::808:808", "public"],
    ["64:ff9b:1::1", "private"],
    ["2002:7f00:1::", "loopback"],
    ["2002:808:808::", "public"],
    ["::2", "reserved"],
    ["::1.2.3.4", "reserved"],
    ["100::1", "reserved"],
    ["2001:db8::1", "public"],
    ["2001::1", "reserved"],
    ["fc00::1", "private"],
    ["fd12:3456::1", "private"],
    ["fd00:ec2::254", "metadata"],
    ["fd00:ec2::253", "private"],
    ["fe80::1", "link-local"],
    ["febf::1", "link-local"],
    ["fec0::1", "private"],
    ["ff02::1", "multicast"],
    ["4000::1", "reserved"],
    ["2606:4700:4700::1111", "public"],
    ["2a00:1450:4001::200e", "public"],
  ];
  for (const [address, kind] of cases) {
    await t.step(`${address} is ${kind}`, () => assert.equal(classifyAddress(address), kind));
  }
  await t.step("a name is not an address", () => {
    assert.throws(() => classifyAddress("localhost"), TypeError);
    assert.throws(() => classifyAddress("127.1"), TypeError);
  });
});

Deno.test("normalizeHost() and parseHostPort() read hosts as clients send them", () => {
  assert.equal(normalizeHost("Example.COM."), "example.com");
  assert.equal(normalizeHost("[::FFFF:127.0.0.1]"), "::ffff:127.0.0.1");
  assert.equal(normalizeHost("::1"), "::1");
  for (const bad of ["", ".", "127.1", "0x7f000001", "exa mple.com", "a_b-.c", "[127.0.0.1]"]) {
    assert.equal(normalizeHost(bad), undefined, bad);
  }
  assert.deepEqual(parseHostPort("Example.com.:443"), { host: "example.com", port: 443 });
  assert.deepEqual(parseHostPort("[::1]:22"), { host: "::1", port: 22 });
  for (
    const bad of ["example.com", "example.com:", "example.com:0", "x:65536", "::1:443", ":443"]
  ) {
    assert.equal(parseHostPort(bad), undefined, bad);
  }
});

Deno.test("decideConnection() allows by name, case and trailing dot aside", () => {
  const r = rules(["registry.npmjs.org"]);
  for (const host of ["registry.npmjs.org", "REGISTRY.npmjs.org", "registry.npmjs.org."]) {
    assert.deepEqual(decideConnection(r, host, 443), {
      allowed: true,
      reason: "allowed by network-domain=registry.npmjs.org",
      rule: "registry.npmjs.org",
    });
  }
  assert.deepEqual(decideConnection(r, "evil.example", 443), {
    allowed: false,
    reason: "no network-domain permission matches evil.example:443",
    suggestion: "network-domain=evil.example",
  });
  assert.equal(decideConnection(r, "npmjs.org", 443).allowed, false);
  assert.equal(decideConnection(r, "x.registry.npmjs.org", 443).allowed, false);
});

Deno.test("decideConnection() matches a wildcard on subdomains only", async (t) => {
  const r = rules(["*.example.test"]);
  for (const host of ["a.example.test", "a.b.example.test", "A.Example.Test."]) {
    await t.step(`${host} matches`, () => {
      assert.equal(
        decideConnection(r, host, 443).reason,
        "allowed by network-domain=*.example.test",
      );
    });
  }
  for (const host of ["example.test", "aexample.test", "example.test.evil", "a.example.testx"]) {
    await t.step(
      `${host} does not`,
      () => assert.equal(decideConnection(r, host, 443).allowed, false),
    );
  }
});

Deno.test("decideConnection() lets deny rules win", async (t) => {
  await t.step("over an exact allow", () => {
    const r = rules(["evil.example"], ["evil.example"]);
    assert.deepEqual(decideConnection(r, "evil.example", 443), {
      allowed: false,
      reason: "refused by --deny-domain evil.example",
      rule: "evil.example",
    });
  });
  await t.step("a wildcard deny inside a wildcard allow", () => {
    const r = rules(["*.example"], ["*.evil.example"]);
    assert.equal(decideConnection(r, "ok.example", 443).allowed, true);
    assert.equal(
      decideConnection(r, "a.evil.example", 443).reason,
      "refused by --deny-domain *.evil.example",
    );
    assert.equal(decideConnection(r, "evil.example", 443).allowed, true, "apex not denied");
  });
  await t.step("without a port, on every port", () => {
    const r = rules(["evil.example:22"], ["evil.example"]);
    assert.equal(decideConnection(r, "evil.example", 22).allowed, false);
  });
  await t.step("with a port, on that port only", () => {
    const r = rules(["example.com:80,443"], ["example.com:80"]);
    assert.equal(
      decideConnection(r, "example.com", 80).reason,
      "refused by --deny-domain example.com:80",
    );
    assert.equal(decideConnection(r, "example.com", 443).allowed, true);
  });
  await t.step("an address deny against an address host", () => {
    const r = rules(["10.0.0.1"], ["10.0.0.1"]);
    assert.equal(decideConnection(r, "10.0.0.1", 443).reason, "refused by --deny-domain 10.0.0.1");
  });
});

Deno.test("decideConnection() allows ports 80 and 443 unless a port is named", () => {
  const r = rules(["example.com"]);
  assert.equal(decideConnection(r, "example.com", 80).allowed, true);
  assert.equal(decideConnection(r, "example.com", 443).allowed, true);
  assert.deepEqual(decideConnection(r, "example.com", 22), {
    allowed: false,
    reason: "port 22 is not allowed for example.com (network-domain=example.com allows 80, 443)",
    suggestion: "network-domain=example.com:22",
  });
  const ported = rules(["example.com:8443", "*.com:9000"]);
  assert.equal(decideConnection(ported, "example.com", 8443).allowed, true);
  assert.equal(
    decideConnection(ported, "example.com", 443).reason,
    "port 443 is not allowed for example.com (network-domain=example.com:8443 allows 8443; " +
      "network-domain=*.com:9000 allows 9000)",
  );
});

Deno.test("decideConnection() matches an address host against address patterns only", () => {
  const r = rules(["127.0.0.1:8080", "[::1]:8080", "localhost:8080"]);
  assert.equal(
    decideConnection(r, "127.0.0.1", 8080).reason,
    "allowed by network-domain=127.0.0.1:8080",
  );
  assert.equal(decideConnection(r, "[::1]", 8080).reason, "allowed by network-domain=[::1]:8080");
  assert.equal(decideConnection(r, "0:0::1", 8080).allowed, true);
  assert.equal(
    decideConnection(r, "::ffff:127.0.0.1", 8080).allowed,
    true,
    "an IPv4-mapped address is its IPv4 address",
  );
  assert.equal(decideConnection(r, "127.0.0.2", 8080).allowed, false);
  assert.deepEqual(decideConnection(r, "127.1", 8080), {
    allowed: false,
    reason: '"127.1" is not a valid host name or address',
  });
  assert.equal(decideConnection(r, "exa mple.com", 443).allowed, false);
  assert.equal(decideConnection(r, "127.0.0.1", 0).reason, "port 0 is not a valid port");
  assert.equal(
    decideConnection(r, "::1", 22).reason,
    "port 22 is not allowed for ::1 (network-domain=[::1]:8080 allows 8080)",
  );
  assert.equal(
    decideConnection(r, "::2", 8080).reason,
    "no network-domain permission matches [::2]:8080",
  );
});

Deno.test("decideAddresses() lets a name reach public addresses only", async (t) => {
  const r = rules(["example.internal", "*.example.test"]);
  await t.step("public addresses pass, duplicates merged and canonical", () => {
    assert.deepEqual(
      decideAddresses(r, "example.internal", 443, [
        "93.184.216.34",
        "2606:2800:0220:1::1",
        "93.184.216.34",
      ]),
      {
        allowed: true,
        reason: "allowed by network-domain=example.internal",
        rule: "example.internal",
        addresses: ["93.184.216.34", "2606:2800:220:1::1"],
      },
    );
  });
  await t.step("a private address is refused with the permission that would allow it", () => {
    assert.deepEqual(decideAddresses(r, "example.internal", 443, ["10.1.2.3"]), {
      allowed: false,
      reason:
        "example.internal resolves to a private address (10.1.2.3); allow that address by name: " +
        "network-domain=10.1.2.3",
      suggestion: "network-domain=10.1.2.3",
      addresses: [],
    });
  });
  await t.step("one private address among public ones refuses the name", () => {
    const mixed = decideAddresses(r, "a.example.test", 443, ["8.8.8.8", "127.0.0.1"]);
    assert.equal(mixed.allowed, false);
    assert.match(mixed.reason, /^a\.example\.test resolves to a loopback address \(127\.0\.0\.1\)/);
  });
  await t.step("every non-public class is refused", () => {
    const addresses: [string, string][] = [
      ["169.254.169.254", "a cloud metadata address"],
      ["fd00:ec2::254", "a cloud metadata address"],
      ["169.254.1.1", "a link-local address"],
      ["0.0.0.0", "an unspecified address"],
      ["224.0.0.1", "a multicast address"],
      ["240.0.0.1", "a reserved address"],
      ["::ffff:192.168.0.1", "a private address"],
    ];
    for (const [address, words] of addresses) {
      const decision = decideAddresses(r, "example.internal", 443, [address]);
      assert.equal(decision.allowed, false, address);
      assert.match(decision.reason, new RegExp(`resolves to ${words} `), address);
    }
  });
  await t.step("naming the address (and port) allows it", () => {
    const named = rules(["example.internal:5432", "10.1.2.3:5432"]);
    assert.deepEqual(decideAddresses(named, "example.internal", 5432, ["10.1.2.3"]).addresses, [
      "10.1.2.3",
    ]);
    const otherPort = rules(["example.internal:5432", "10.1.2.3"]);
    const refused = decideAddresses(otherPort, "example.internal", 5432, ["10.1.2.3"]);
    assert.equal(refused.suggestion, "network-domain=10.1.2.3:5432");
  });
  await t.step("localhost reaches loopback when the pattern is localhost", () => {
    const local = rules(["localhost:3000"]);
    assert.deepEqual(decideAddresses(local, "localhost", 3000, ["127.0.0.1", "::1"]).addresses, [
      "127.0.0.1",
      "::1",
    ]);
    assert.equal(decideAddresses(local, "localhost", 3000, ["10.0.0.1"]).allowed, false);
    const wildcard = rules(["*.localhost:3000"]);
    assert.equal(decideAddresses(wildcard, "app.localhost", 3000, ["127.0.0.1"]).allowed, false);
  });
  await t.step("an address host passes when its pattern named it", () => {
    const ip = rules(["127.0.0.1:8080"]);
    assert.equal(decideAddresses(ip, "127.0.0.1", 8080, ["127.0.0.1"]).allowed, true);
  });
  await t.step("a deny on an address refuses a name that resolves to it", () => {
    const denied = rules(["example.internal"], ["93.184.216.34"]);
    assert.deepEqual(decideAddresses(denied, "example.internal", 443, ["93.184.216.34"]), {
      allowed: false,
      reason: "example.internal resolves to 93.184.216.34, refused by --deny-domain 93.184.216.34",
      rule: "93.184.216.34",
      addresses: [],
    });
  });
  await t.step("the name stage still decides first", () => {
    assert.equal(
      decideAddresses(rules([], ["example.internal"]), "example.internal", 443, ["8.8.8.8"]).reason,
      "refused by --deny-domain example.internal",
    );
  });
  await t.step("no address, or one that is not an address, is refused", () => {
    assert.equal(
      decideAddresses(r, "example.internal", 443, []).reason,
      "example.internal resolves to no address",
    );
    assert.equal(decideAddresses(r, "example.internal", 443, ["nonsense"]).allowed, false);
  });
});

Deno.test("suggestPermission() gives the permission that would allow a connection", () => {
  assert.equal(suggestPermission("Example.com.", 443), "network-domain=example.com");
  assert.equal(suggestPermission("example.com", 80), "network-domain=example.com");
  assert.equal(suggestPermission("example.com", 22), "network-domain=example.com:22");
  assert.equal(suggestPermission("10.1.2.3", 443), "network-domain=10.1.2.3");
  assert.equal(suggestPermission("[::1]", 443), "network-domain=::1");
  assert.equal(suggestPermission("::1", 5432), "network-domain=[::1]:5432");
  assert.equal(suggestPermission("2001:db8::1:443", 443), "network-domain=[2001:db8::1:443]");
  assert.equal(suggestPermission("127.1", 443), undefined);
  assert.equal(suggestPermission("example.com", 70000), undefined);
  for (const host of ["example.com", "::1", "10.1.2.3"]) {
    for (const port of [80, 443, 22]) {
      const text = suggestPermission(host, port)!.slice("network-domain=".length);
      assert.equal(decideConnection(rules([text]), host, port).allowed, true, `${host}:${port}`);
    }
  }
});

Deno.test("decideConnection() quotes a malformed host in printable ASCII", () => {
  const reason = decideConnection(rules([]), `evil\x1b[2J\x9b${"x".repeat(200)}`, 443).reason;
  assert.match(reason, /^"evil\\u001b\[2J\\u009bx+\.\.\." is not a valid host name or address$/);
  assert.match(reason, /^[\x20-\x7e]+$/);
});

Deno.test("decideAddresses(): this machine's own address is refused like a private one, unless named", () => {
  const allow = [parseDomainPattern("self.example")];
  // Positive control: a public address, not the machine's own, is allowed by the name.
  assert.equal(
    decideAddresses({ allow, deny: [] }, "self.example", 443, ["203.0.113.9"]).allowed,
    true,
  );
  const own = { allow, deny: [], ownAddresses: ["203.0.113.9"] };
  const refused = decideAddresses(own, "self.example", 443, ["203.0.113.9"]);
  assert.equal(refused.allowed, false);
  assert.match(refused.reason, /this machine's own address \(203\.0\.113\.9\)/);
  // Mapped into IPv6, the same address.
  assert.equal(decideAddresses(own, "self.example", 443, ["::ffff:203.0.113.9"]).allowed, false);
  const named = { ...own, allow: [...allow, parseDomainPattern("203.0.113.9")] };
  assert.equal(decideAddresses(named, "self.example", 443, ["203.0.113.9"]).allowed, true);
});
