"""Synthesize security reports in the shape Quay serves for Clair v4 scans.

Rows are derived from the manifest digest and row indexes, never stored, so
a registry with millions of package rows costs nothing until it is asked.
"""

from __future__ import annotations

import hashlib
import re

from .model import Json

_PACKAGES = (
    "openssl",
    "busybox",
    "zlib",
    "musl",
    "libcurl",
    "ca-certificates",
    "python3",
    "glibc",
    "bash",
    "sqlite-libs",
    "expat",
    "libxml2",
    "pcre2",
    "ncurses-libs",
    "krb5-libs",
    "libssh",
    "tzdata",
    "xz-libs",
    "gnutls",
    "libgcrypt",
    ").split(",
)

# (Clair severity, CVSS score, vector): covers the derivation rules, including
# an empty Clair severity (bucketed from the score), a missing score (""),
# and a score of 10.0 that Quay's buckets leave "Unknown".
_FINDING_KINDS: tuple[tuple[str, float | str, str], ...] = (
    ("High", 7.5, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"),
    ("Medium", 5.3, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N"),
    ("", 9.8, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
    ("Low", "", ""),
    ("Unknown", 10.0, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"),
    ("Negligible", 2.1, "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"),
    ("", 4.4, "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:N/A:N"),
)

_CVE = re.compile(r"CVE-\d{4}-\d{4,}")


def number(seed: str, modulo: int) -> int:
    """Derive a stable pseudo-random number in [0, modulo) from a seed string."""
    return int(hashlib.sha256(seed.encode()).hexdigest()[:12], 16) % modulo


def severity(clair_severity: str, score: float | str) -> str:
    """Apply Quay's rule: Clair's severity, else bucket the CVSS score."""
    if clair_severity and clair_severity != "Unknown":
        return clair_severity
    if isinstance(score, str) or not 0 < score < 10:
        return "Unknown"
    if score < 4:
        return "Low"
    if score < 7:
        return "Medium"
    return "High" if score < 9 else "Critical"


def scanned_report(
    digest: str, layer_digests: list[str], packages: int, vulnerabilities: int
) -> Json:
    """Build the `data` of a scanned manifest with the given row counts."""
    findings: dict[int, list[Json]] = {}
    for index in range(vulnerabilities):
        owner = (index * 7) % max(packages, 1)
        findings.setdefault(owner, []).append(_finding(digest, index))
    features = [
        _feature(digest, index, layer_digests, findings.get(index, [])) for index in range(packages)
    ]
    return {
        "Layer": {
            "Name": digest,
            "ParentName": "",
            "NamespaceName": "",
            "IndexedByVersion": 4,
            "Features": features,
        }
    }


def _feature(digest: str, index: int, layers: list[str], vulns: list[Json]) -> Json:
    """Build one package row; scores and CVE ids follow Quay's derivation."""
    base = _PACKAGES[index % len(_PACKAGES)]
    name = base if index < len(_PACKAGES) else f"{base}{index // len(_PACKAGES)}"
    seed = number(f"{digest}:{index}", 1000)
    links = " ".join(vuln["Link"] for vuln in vulns)
    return {
        "Name": name,
        "VersionFormat": "",
        "NamespaceName": "",
        "AddedBy": layers[index % len(layers)] if layers else digest,
        "Version": f"{1 + index % 4}.{seed % 20}.{seed % 9}-r{index % 5}",
        "BaseScores": [v["Metadata"]["NVD"]["CVSSv3"]["Score"] for v in vulns if _scored(v)],
        "CVEIds": sorted(set(_CVE.findall(links))),
        "Vulnerabilities": vulns,
    }


def _scored(vuln: Json) -> bool:
    """Tell whether a finding carries a numeric CVSS score."""
    return not isinstance(vuln["Metadata"]["NVD"]["CVSSv3"]["Score"], str)


def _finding(digest: str, index: int) -> Json:
    """Build one vulnerability row in one of three naming styles."""
    clair_severity, score, vector = _FINDING_KINDS[index % len(_FINDING_KINDS)]
    cve = f"CVE-2099-{10000 + number(f'{digest}:cve:{index}', 90000)}"
    style = index % 3
    if style == 0:
        name, link = cve, f"https://security.example.org/{cve} https://nvd.example.org/{cve}"
    elif style == 1:
        # Vendor ids can name a CVE that the links never mention: CVEIds stays empty.
        name, link = f"pyup.io-{40000 + index} ({cve})", f"https://pyup.example.org/{index}"
    else:
        advisory = f"RHSA-2099:{1000 + index}"
        name = f"{advisory}: security update (Moderate)"
        link = f"https://errata.example.org/{advisory} https://cve.example.org/{cve}"
    updater = "pypi" if style == 1 else "alpine-main-v3.19-updater"
    return {
        "Severity": severity(clair_severity, score),
        "NamespaceName": updater,
        "Link": link,
        "FixedBy": "" if index % 3 == 2 else f"{2 + index % 3}.0.{index}-r0",
        "Description": f"Example finding {index}: crafted input causes a crash.",
        "Name": name,
        "Metadata": {
            "UpdatedBy": updater,
            "RepoName": "pypi" if style == 1 else None,
            "RepoLink": None,
            "DistroName": "" if style == 1 else "Alpine Linux",
            "DistroVersion": "" if style == 1 else "3.19",
            "NVD": {"CVSSv3": {"Vectors": vector, "Score": score}},
        },
    }
