"""``s3://bucket/prefix``: a bucket (or a prefix in it) on any S3-compatible object store.

URL: ``s3://BUCKET`` or ``s3://BUCKET/some/prefix``; paths of the endpoint are keys below
``prefix/``. Options (``[connections.NAME]`` keys besides ``url``; all optional):

=================  ========================================================================
``endpoint``       base URL of the store (``https://obs.cn-north-4.myhuaweicloud.com``,
                   ``http://127.0.0.1:9000``); default: Amazon S3 in ``region``
``region``         signing region; default: the AWS configuration (``AWS_REGION``, profile),
                   else ``us-east-1`` (on Amazon S3 a bucket in another region is found
                   from the store's redirect)
``addressing``     ``path`` | ``virtual`` | ``auto`` (virtual when the bucket name is a DNS
                   label and the endpoint is not an IP address); default: the provider's
``provider``       ``aws`` | ``obs`` | ``oss`` | ``minio`` | ``seaweedfs`` | ``ceph`` |
                   ``other`` (see ``s3_providers.py``); default ``aws`` without ``endpoint``,
                   else ``other``
``access_key``,    credentials (write them as ``${VAR}`` in the plan); without them the
``secret_key``,    normal AWS chain applies: ``AWS_ACCESS_KEY_ID`` /
``session_token``  ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, the
                   shared credentials file, SSO, instance or container roles
``storage_class``  sent with every upload and copy; checked against the provider's list
``checksum``       ``sha256``: ask the store to keep a SHA-256 of each object (where the
                   provider supports it; stat then reports it); ``none`` (default)
``verify_tls``     bool, default true
``ca_bundle``      path of a PEM file with the CA certificates to trust (also
                   ``AWS_CA_BUNDLE``)
=================  ========================================================================

How requests are made (the performance contract): botocore resolves the credentials
(its whole chain, refreshed when they expire), but requests are signed here (AWS SigV4,
:class:`_Signer`, checked against botocore's signer in the tests) and sent over one shared
urllib3 connection pool: botocore's per-call pipeline costs ~1.4 ms of CPU per request,
this path ~0.35 ms, which decides the throughput of many small files on a small machine.
Payloads are always signed with their SHA-256 (the store refuses a body altered in transit
before anything becomes visible); no ``Expect: 100-continue`` round trip is made. Idempotent
requests are retried (4 attempts, exponential backoff) on connection errors, 5xx and
throttling; what still fails is a :class:`~migrate.errors.TransientError`. The two POSTs
are retried too, with care: a CreateMultipartUpload whose reply was lost may have started
an upload, which is aborted once the retry has its own; a CompleteMultipartUpload whose
reply was lost and whose retry finds no upload any more is checked by the object's ETag.
A reply that is not S3 XML (a proxy's page, a cut body) is a TransientError naming the
key. ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` are honoured (as botocore does).

Addressing on Amazon S3 (and any provider whose default is virtual-hosted style): a bucket
name that is not a DNS name, or that holds a dot when the endpoint is https (the store's
wildcard certificate does not cover it), is reached path-style unless ``addressing`` is
given; ``cn-*`` regions are under ``amazonaws.com.cn``.

Writes: ``put`` sends one PUT below ``multipart_threshold`` (0 = 16 MiB), else a multipart
upload in parts of :func:`~connectors.files.base.effective_part_size` read one at a time
(memory: one part buffer per running put), completed at the end; any failure (also
KeyboardInterrupt) aborts the upload, so nothing is ever visible under the key and no
incomplete upload is left. Directories are zero-byte marker objects ``path/``; ``move`` is
a server-side copy then a delete. ``abort_stale_uploads`` removes incomplete multipart
uploads a killed run left under the prefix, once they are older than
:data:`STALE_UPLOAD_AGE` (the copy engine calls it when a step starts; a younger one may
belong to another process writing under the same prefix).
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import io
import ipaddress
import mimetypes
import os
import random
import re
import threading
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar
from urllib.parse import quote, unquote, unquote_plus, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape as xml_escape

from connectors.files.base import (
    MIB,
    FileCapabilities,
    FileInfo,
    PutResult,
    check_options,
    effective_part_size,
    multipart_etag,
)
from connectors.files.s3_providers import PROVIDERS, Provider
from migrate.errors import ConnectorError, MissingDriverError, PlanError, TransientError

DEFAULT_PART_SIZE = 8 * MIB
DEFAULT_THRESHOLD = 16 * MIB
MAX_KEY_BYTES = 1024
ATTEMPTS = 4  # per request, for errors a retry can cure
#: abort_stale_uploads aborts incomplete uploads initiated longer ago than this (seconds)
STALE_UPLOAD_AGE = 24 * 3600
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_BUCKET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")
_DNS_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_DNS_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DNS_NAME_RE = re.compile(rf"^{_DNS_LABEL}(?:\.{_DNS_LABEL})*$")
_TRANSIENT_STATUS = frozenset({500, 502, 503, 504})
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "OperationAborted",
    }
)
_CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
)


# -- SigV4 signing ---------------------------------------------------------------------
def _uri_encode(text: str, safe: str = "-_.~") -> str:
    """RFC 3986 encoding as SigV4 wants it (UTF-8, unreserved characters kept)."""
    return quote(text, safe=safe)


def canonical_query(params: dict[str, str]) -> str:
    """The query string in SigV4 canonical form (sorted, every name and value encoded);
    the same string is sent, so the signed and the sent query cannot differ."""
    return "&".join(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(params.items()))


class _Signer:
    """AWS Signature Version 4 for S3 (header form).

    ``sign`` adds ``x-amz-date``, ``x-amz-content-sha256``, ``x-amz-security-token`` (when
    the credentials have one) and ``authorization`` to ``headers``; every header in
    ``headers`` (lower-case names) is signed. Signing keys are cached per day."""

    def __init__(self, credentials: Any, region: str) -> None:
        self._credentials = credentials  # botocore Credentials (maybe refreshable)
        self.region = region
        self._keys: dict[tuple[str, str, str], bytes] = {}

    def _key(self, secret: str, day: str) -> bytes:
        cached = self._keys.get((secret, day, self.region))
        if cached is None:
            cached = ("AWS4" + secret).encode()
            for part in (day, self.region, "s3", "aws4_request"):
                cached = hmac.new(cached, part.encode(), hashlib.sha256).digest()
            self._keys = {(secret, day, self.region): cached}  # one day at a time
        return cached

    def sign(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        payload_sha256: str,
        now: float | None = None,
    ) -> dict[str, str]:
        creds = self._credentials.get_frozen_credentials()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        day = stamp[:8]
        headers["x-amz-date"] = stamp
        headers["x-amz-content-sha256"] = payload_sha256
        if creds.token:
            headers["x-amz-security-token"] = creds.token
        names = sorted(headers)
        canonical = "\n".join(
            (
                method,
                path,
                query,
                "".join(f"{n}:{' '.join(str(headers[n]).split())}\n" for n in names),
                ";".join(names),
                payload_sha256,
            )
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            (
                "AWS4-HMAC-SHA256",
                stamp,
                scope,
                hashlib.sha256(canonical.encode()).hexdigest(),
            )
        )
        signature = hmac.new(
            self._key(creds.secret_key, day), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        return headers


# -- small helpers ---------------------------------------------------------------------
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(node: ElementTree.Element, name: str) -> str | None:
    for child in node:
        if _local(child.tag) == name:
            return child.text or ""
    return None


def _children(node: ElementTree.Element, name: str) -> Iterator[ElementTree.Element]:
    for child in node:
        if _local(child.tag) == name:
            yield child


def _etag(value: str | None) -> str | None:
    """An ETag without quotes, lower-case (OSS writes upper-case hex)."""
    if not value:
        return None
    return value.strip().strip('"').lower() or None


def _iso_ns(text: str | None) -> int | None:
    """``2024-06-01T12:00:00.000Z`` → ns since the epoch (None when absent/unparsable)."""
    if not text:
        return None
    try:
        main, _, rest = text.rstrip("Z").partition(".")
        secs = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None
    frac = int((rest + "000000000")[:9]) if rest.isdigit() else 0
    return secs * 1_000_000_000 + frac


def _http_date_ns(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(parsedate_to_datetime(text).timestamp()) * 1_000_000_000
    except (TypeError, ValueError):
        return None


def _b64_sha256_hex(value: str | None, checksum_type: str | None = None) -> str | None:
    """A whole-object ``x-amz-checksum-sha256`` as hex; None for a composite (multipart)
    checksum, which is not the SHA-256 of the content."""
    if not value or "-" in value or (checksum_type or "").upper() == "COMPOSITE":
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    return raw.hex() if len(raw) == 32 else None


def _read_into(stream: BinaryIO, view: memoryview) -> int:
    """Fill ``view`` from ``stream`` (which may return short reads); the count read, less
    than ``len(view)`` only at the end of the stream."""
    got = 0
    want = len(view)
    readinto = getattr(stream, "readinto", None)
    while got < want:
        if readinto is not None:
            n = readinto(view[got:])
            if not n:
                break
            got += n
        else:
            data = stream.read(want - got)
            if not data:
                break
            view[got : got + len(data)] = data
            got += len(data)
    return got


class _Failure(Exception):
    """An S3 request that failed: status, S3 error code and message (internal)."""

    def __init__(self, status: int, code: str, message: str, region: str | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.region = status, code, message, region

    @property
    def transient(self) -> bool:
        return self.status in _TRANSIENT_STATUS or self.code in _TRANSIENT_CODES


class _Unreachable(Exception):
    """The endpoint could not be reached (connection refused, reset, timed out)."""


class _TlsFailure(Exception):
    """The TLS handshake failed (certificate not trusted, wrong host name)."""


class _Body(io.RawIOBase):
    """A GET response body as a binary stream, read in blocks (bounded memory). Errors
    while reading become connector errors naming the connection and key."""

    def __init__(self, response: Any, fail: Any) -> None:
        self._response = response
        self._fail = fail  # exc -> ConnectorError
        self._done = False

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if self._done:
            return b""
        try:
            if n is None or n < 0:
                data = self._response.read(decode_content=False)
            else:
                data = self._response.read(n, decode_content=False)
        except Exception as exc:
            raise self._fail(exc) from None
        if not data and (n is None or n != 0):
            self._done = True
        return data

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self._done:
                self._response.close()  # drop the connection: the rest is not wanted
            self._response.release_conn()
        finally:
            super().close()


# -- the endpoint -----------------------------------------------------------------------
class S3Endpoint:
    """A bucket prefix on an S3-compatible store (see the module docstring)."""

    kind = "file"
    OPTIONS: ClassVar[dict[str, type]] = {
        "endpoint": str,
        "region": str,
        "addressing": str,
        "provider": str,
        "access_key": str,
        "secret_key": str,
        "session_token": str,
        "storage_class": str,
        "checksum": str,
        "verify_tls": bool,
        "ca_bundle": str,
    }

    def __init__(
        self,
        name: str,
        url: str,
        options: dict[str, Any],
        *,
        base_dir: Path,
        workers: int = 4,
        secrets: frozenset[str] = frozenset(),
        dry_run: bool = False,
    ) -> None:
        check_options(options, set(self.OPTIONS), name)
        opts = {k: self._option(options, name, k) for k in self.OPTIONS}
        self.name = name
        self.dry_run = dry_run
        self._secrets = frozenset(s for s in (*secrets, opts["secret_key"]) if s)
        self.bucket, self.prefix = self._parse_url(name, url)

        endpoint = opts["endpoint"]
        provider_name = opts["provider"] or ("other" if endpoint else "aws")
        if provider_name not in PROVIDERS:
            raise self._bad(
                "provider", f"must be one of {', '.join(PROVIDERS)}, not {provider_name!r}"
            )
        self.provider_name = provider_name
        self.provider: Provider = PROVIDERS[provider_name]
        self._endpoint_url = self._parse_endpoint(endpoint) if endpoint else None
        self._region_given = opts["region"]
        addressing = opts["addressing"] or self.provider.addressing
        if addressing not in ("path", "virtual", "auto"):
            raise self._bad("addressing", f"must be path, virtual or auto, not {addressing!r}")
        self.addressing = addressing
        self._addressing_given = opts["addressing"] is not None
        self.storage_class = self._check_storage_class(opts["storage_class"])
        checksum = opts["checksum"] or "none"
        if checksum not in ("sha256", "none"):
            raise self._bad("checksum", f"must be sha256 or none, not {checksum!r}")
        self._sha256 = checksum == "sha256" and self.provider.sha256_checksums
        if (opts["access_key"] is None) != (opts["secret_key"] is None):
            raise self._bad(
                "access_key" if opts["access_key"] is None else "secret_key",
                "access_key and secret_key go together (or leave both out to use the"
                " AWS credential chain)",
            )
        if opts["session_token"] is not None and opts["access_key"] is None:
            raise self._bad("session_token", "needs access_key and secret_key")
        self._static_keys = (opts["access_key"], opts["secret_key"], opts["session_token"])
        self.verify_tls = True if opts["verify_tls"] is None else opts["verify_tls"]
        ca_bundle = opts["ca_bundle"]
        if ca_bundle is not None:
            ca_path = Path(ca_bundle).expanduser()
            ca_bundle = str(ca_path if ca_path.is_absolute() else base_dir / ca_path)
        self.ca_bundle = ca_bundle
        self._pool_size = max(32, 4 * workers)
        self.capabilities = FileCapabilities(
            scheme="s3",
            filesystem=False,
            # "sha256" is not listed even with checksum = "sha256": ListObjectsV2 does not
            # return checksums and a multipart object's is composite (not the content's
            # SHA-256); put results and stat carry it where the store has it.
            free_hashes=("etag",) if self.provider.etag_is_md5 else (),
            multipart=True,
            max_parts=self.provider.max_parts,
            min_part_size=self.provider.min_part_size,
            server_copy=self.provider.server_copy,
        )
        self._lock = threading.Lock()
        self._ready = False
        self._active_uploads: set[str] = set()

    # -- options ------------------------------------------------------------------------
    def _option(self, options: dict[str, Any], where: str, key: str) -> Any:
        kind = self.OPTIONS[key]
        value = options.get(key)
        if value is None:
            return None
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise PlanError(
                f"connections.{where}.options.{key}: must be a"
                f" {'true/false' if kind is bool else 'string'}"
            )
        if kind is str and not value.strip():
            raise PlanError(f"connections.{where}.options.{key}: must not be empty")
        return value

    def _bad(self, key: str, message: str) -> PlanError:
        return PlanError(f"connections.{self.name}.options.{key}: {message}")

    @staticmethod
    def _parse_url(name: str, url: str) -> tuple[str, str]:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise PlanError(f"connections.{name}.url: expected s3://BUCKET[/PREFIX], got {url!r}")
        if parts.query or parts.fragment or "@" in parts.netloc:
            raise PlanError(
                f"connections.{name}.url: s3 URLs hold only the bucket and a prefix"
                " (credentials and the endpoint are options)"
            )
        bucket = parts.netloc
        if not _BUCKET_RE.match(bucket):
            raise PlanError(f"connections.{name}.url: {bucket!r} is not a valid bucket name")
        prefix = unquote(parts.path).strip("/")
        return bucket, (prefix + "/" if prefix else "")

    def _parse_endpoint(self, endpoint: str) -> str:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise self._bad("endpoint", f"expected http(s)://HOST[:PORT], got {endpoint!r}")
        if parts.username or parts.password or parts.query or parts.path.strip("/"):
            raise self._bad("endpoint", "give only scheme, host and port (credentials are options)")
        try:
            port = parts.port
        except ValueError:
            raise self._bad("endpoint", f"bad port in {endpoint!r}") from None
        host = parts.hostname
        if ":" in host:
            host = f"[{host}]"
        return f"{parts.scheme}://{host}" + (f":{port}" if port else "")

    def _check_storage_class(self, value: str | None) -> str | None:
        known = self.provider.storage_classes
        if value is None or known is None or value in known:
            return value
        if self.provider.custom_storage_classes:
            return value
        raise self._bad(
            "storage_class",
            f"{self.provider.title} knows {', '.join(known)}; not {value!r}",
        )

    # -- connection set-up (lazy: constructing an endpoint never touches the network) ----
    def _setup(self) -> None:
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            try:
                import botocore.credentials
                import botocore.session
                import urllib3
            except ImportError:
                raise MissingDriverError("boto3", "s3") from None
            self._urllib3 = urllib3
            session = botocore.session.get_session()
            access, secret, token = self._static_keys
            if access is not None:
                creds = botocore.credentials.Credentials(access, secret, token)
            else:
                try:
                    creds = session.get_credentials()
                except Exception as exc:  # a broken profile, an SSO login that expired
                    raise ConnectorError(
                        f"{self.name}: cannot load AWS credentials: {self._scrub(str(exc))}"
                    ) from None
                if creds is None:
                    raise ConnectorError(
                        f"{self.name}: no S3 credentials: set the access_key and secret_key"
                        " options, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                    )
            self._credentials = creds
            region = self._region_given or session.get_config_variable("region")
            self._signer = _Signer(creds, region or "us-east-1")
            self._configure_host()
            self._ready = True

    def _virtual_host(self, scheme: str, host: str) -> bool:
        """Whether the bucket goes into the host name (virtual-hosted style)."""
        if self.addressing == "path":
            return False
        if self.addressing == "auto":
            return (
                bool(_DNS_BUCKET_RE.match(self.bucket))
                and not _is_ip(host)
                and "." not in self.bucket
            )
        if self._addressing_given:
            return True  # asked for: the user knows the store
        # the provider's default: only where the name can be a host name, and where a dot
        # does not break the TLS certificate (*.s3.amazonaws.com covers one label)
        return (
            _dns_bucket(self.bucket)
            and not _is_ip(host)
            and ("." not in self.bucket or scheme == "http")
        )

    def _configure_host(self) -> None:
        """Base URL, host and path style for the current region; (re)creates the pool."""
        region = self._signer.region
        suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
        base = self._endpoint_url or f"https://s3.{region}.{suffix}"
        parts = urlsplit(base)
        host = parts.hostname or ""
        virtual = self._virtual_host(parts.scheme, host)
        if virtual:
            host = f"{self.bucket}.{host}"
        netloc = host + (f":{parts.port}" if parts.port else "")
        self._base_url = base
        self._host_header = netloc
        self._bucket_path = "" if virtual else "/" + _uri_encode(self.bucket)
        kw: dict[str, Any] = {
            "maxsize": self._pool_size,
            "block": False,
            "retries": False,
            "timeout": self._urllib3.Timeout(connect=10.0, read=120.0),
        }
        if parts.scheme == "https":
            if self.verify_tls:
                kw["cert_reqs"] = "CERT_REQUIRED"
                ca = self.ca_bundle or os.environ.get("AWS_CA_BUNDLE")
                if ca:
                    kw["ca_certs"] = ca
            else:
                kw["cert_reqs"] = "CERT_NONE"
                kw["assert_hostname"] = False
        old = getattr(self, "_pool", None)
        old_manager = getattr(self, "_proxy_manager", None)
        proxy = _proxy_for(parts.scheme, host)
        self._target_prefix = ""
        self._proxy_manager = None
        if proxy is None:
            self._pool = self._urllib3.connection_from_url(f"{parts.scheme}://{netloc}", **kw)
        else:
            proxy_url, proxy_auth = proxy
            if proxy_auth:
                self._secrets = self._secrets | {proxy_auth.split(":", 1)[-1]}
                kw["proxy_headers"] = self._urllib3.make_headers(proxy_basic_auth=proxy_auth)
            self._proxy_manager = self._urllib3.ProxyManager(proxy_url, num_pools=2, **kw)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            self._pool = self._proxy_manager.connection_from_host(host, port, parts.scheme)
            if parts.scheme == "http":  # a forwarding proxy: the request line has the URL
                self._target_prefix = f"http://{netloc}"
        if old is not None:
            old.close()
        if old_manager is not None:
            old_manager.clear()

    def _fingerprint(self) -> tuple[str, str, str]:
        """Endpoint and credential identity (no secret in clear) for ``can_copy_from``."""
        self._setup()
        creds = self._credentials.get_frozen_credentials()
        secret = hashlib.sha256(f"{creds.secret_key}\0{creds.token}".encode()).hexdigest()
        return (
            self._endpoint_url or f"aws:{self._signer.region}",
            creds.access_key,
            secret,
        )

    # -- requests -----------------------------------------------------------------------
    def _key(self, path: str) -> str:
        return self.prefix + path

    def _url(self, key: str | None, query: str = "") -> tuple[str, str]:
        """(canonical path, request target) for an object key, or the bucket (None)."""
        path = self._bucket_path + ("/" + _uri_encode(key, "-_.~/") if key is not None else "/")
        return path, path + ("?" + query if query else "")

    def _request(
        self,
        method: str,
        key: str | None,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | memoryview | None = None,
        payload_sha256: str | None = None,
        stream: bool = False,
        ok: tuple[int, ...] = (200,),
        resent: list[bool] | None = None,
    ) -> Any:
        """Send one signed request; returns the urllib3 response (body read unless
        ``stream``). Retries what a retry can cure; raises :class:`_Failure`,
        :class:`_Unreachable` or :class:`_TlsFailure`. ``resent`` gets an entry each time
        the request is sent again after a failure that may have reached the store (its
        reply lost): a POST's caller checks what the lost one did."""
        self._setup()
        urllib3 = self._urllib3
        query = canonical_query(params) if params else ""
        if body is None:
            payload = EMPTY_SHA256
        else:
            payload = payload_sha256 or hashlib.sha256(body).hexdigest()
        redirected = False
        attempt = 0
        while True:
            attempt += 1
            path, target = self._url(key, query)
            hdrs = {"host": self._host_header}
            if headers:
                hdrs.update(headers)
            if body is not None or method in ("PUT", "POST"):
                hdrs["content-length"] = str(0 if body is None else len(body))
            self._signer.sign(method, path, query, hdrs, payload)
            try:
                response = self._pool.urlopen(
                    method,
                    self._target_prefix + target,
                    body=body,
                    headers=hdrs,
                    retries=False,
                    redirect=False,
                    preload_content=not stream,
                    decode_content=False,
                    assert_same_host=False,
                )
            except urllib3.exceptions.SSLError as exc:
                raise _TlsFailure(str(exc)) from None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if attempt < ATTEMPTS:
                    if resent is not None and not isinstance(
                        exc,
                        urllib3.exceptions.ConnectTimeoutError,  # never connected
                    ):
                        resent.append(True)
                    self._backoff(attempt)
                    continue
                raise _Unreachable(_short(exc)) from None
            if response.status in ok:
                return response
            failure = self._failure(response, method)
            if (
                failure.region
                and failure.region != self._signer.region
                and not self._region_given
                and not redirected
            ):
                # a bucket in another region (Amazon S3): sign for its region, once
                redirected = True
                with self._lock:
                    self._signer.region = failure.region
                    if self._endpoint_url is None:
                        self._configure_host()
                continue
            if failure.transient and attempt < ATTEMPTS:
                self._backoff(attempt)
                continue
            raise failure

    @staticmethod
    def _backoff(attempt: int) -> None:
        time.sleep(min(2.0, 0.1 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2))

    @staticmethod
    def _failure(response: Any, method: str) -> _Failure:
        data = response.data
        region = response.headers.get("x-amz-bucket-region")
        code, message = "", ""
        if data and method != "HEAD":
            try:
                root = ElementTree.fromstring(data)
                code = _child_text(root, "Code") or ""
                message = _child_text(root, "Message") or ""
                region = region or _child_text(root, "Region")
            except ElementTree.ParseError:
                message = data[:200].decode("utf-8", "replace")
        response.release_conn()
        if not code:
            code = {
                301: "PermanentRedirect",
                400: "BadRequest",
                403: "AccessDenied",
                404: "NotFound",
                405: "MethodNotAllowed",
                412: "PreconditionFailed",
                503: "SlowDown",
            }.get(response.status, f"HTTP{response.status}")
        return _Failure(response.status, code, " ".join(message.split()), region)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _where(self, key: str | None) -> str:
        return f"s3://{self.bucket}/{key}" if key is not None else f"bucket {self.bucket!r}"

    def _error(self, what: str, key: str | None, exc: BaseException) -> ConnectorError:
        """The one-line error for a failed request (``exc``: an internal failure)."""
        where = self._where(key)
        if isinstance(exc, _Unreachable):
            return TransientError(
                self._scrub(
                    f"{self.name}: cannot {what} {where}: endpoint {self._base_url}"
                    f" unreachable: {exc}"
                )
            )
        if isinstance(exc, _TlsFailure):
            return ConnectorError(
                self._scrub(
                    f"{self.name}: cannot {what} {where}: TLS failure with {self._base_url}"
                    f" ({exc}); set the ca_bundle option (or verify_tls = false)"
                )
            )
        if not isinstance(exc, _Failure):
            return ConnectorError(self._scrub(f"{self.name}: cannot {what} {where}: {exc}"))
        detail = f" ({exc.code}: {exc.message})" if exc.message else f" ({exc.code})"
        if exc.code in _CREDENTIAL_CODES or (exc.status == 403 and exc.code == "AccessDenied"):
            text = (
                f"{self.name}: cannot {what} {where}: access denied: check the access key"
                f" and secret for connection {self.name} and its permissions{detail}"
            )
            if exc.code in _CREDENTIAL_CODES:
                text = (
                    f"{self.name}: cannot {what} {where}: access denied: check the access"
                    f" key and secret for connection {self.name}{detail}"
                )
            return ConnectorError(self._scrub(text))
        if exc.code == "NoSuchBucket":
            return ConnectorError(
                self._scrub(
                    f"{self.name}: cannot {what} {where}: bucket {self.bucket!r} does not"
                    f" exist on {self._base_url}"
                )
            )
        if exc.code in ("NoSuchKey", "NotFound") and key is not None:
            return ConnectorError(self._scrub(f"{self.name}: cannot {what} {where}: not found"))
        cls = TransientError if exc.transient else ConnectorError
        return cls(self._scrub(f"{self.name}: cannot {what} {where}: HTTP {exc.status}{detail}"))

    def _call(self, what: str, key: str | None, method: str, **kw: Any) -> Any:
        try:
            return self._request(method, key, **kw)
        except (_Failure, _Unreachable, _TlsFailure) as exc:
            raise self._error(what, key, exc) from None

    def _xml(self, what: str, key: str | None, data: bytes) -> ElementTree.Element:
        """A reply's XML document; a body that is not XML (a proxy's page, a reply cut
        short) is a :class:`TransientError` naming the connection and the key."""
        try:
            return ElementTree.fromstring(data)
        except ElementTree.ParseError:
            start = " ".join(data[:60].decode("utf-8", "replace").split())
            shown = f"starts {start!r}" if start else "is empty"
            raise TransientError(
                self._scrub(
                    f"{self.name}: cannot {what} {self._where(key)}: the store's reply is not"
                    f" S3 XML (it {shown})"
                )
            ) from None

    # -- describe -----------------------------------------------------------------------
    def describe(self) -> str:
        where = self._endpoint_url or "Amazon S3"
        return f"s3 {where} bucket {self.bucket} prefix /{self.prefix} ({self.provider.title})"

    def location(self) -> dict[str, str | None]:
        """Where the objects are, for scripts a person runs with another client: the
        endpoint URL (None: Amazon S3), the region when one is set, the bucket and the key
        prefix (``""`` or ending in ``/``). Never a credential."""
        return {
            "endpoint": self._endpoint_url,
            "region": self._region_given,
            "bucket": self.bucket,
            "prefix": self.prefix,
        }

    # -- reading ------------------------------------------------------------------------
    def list(self, *, follow_symlinks: bool = False) -> Iterator[FileInfo]:
        """Every object under the prefix (ListObjectsV2, pages of 1000, keys in byte
        order). A marker ``d/`` is listed as the empty directory ``d`` only when no key
        follows below it; the prefix's own marker is not listed."""
        params = {"list-type": "2", "encoding-type": "url", "max-keys": "1000"}
        if self.prefix:
            params["prefix"] = self.prefix
        cut = len(self.prefix)
        pending: FileInfo | None = None  # a marker, listed unless the next key is below it
        pending_key = ""
        while True:
            response = self._call("list", None, "GET", params=params)
            root = self._xml("list", None, response.data)
            for item in _children(root, "Contents"):
                key = unquote_plus(_child_text(item, "Key") or "")
                if pending is not None:
                    if not key.startswith(pending_key):
                        yield pending
                    pending = None
                rel = key[cut:]
                if not rel or not key.startswith(self.prefix):
                    continue
                size = int(_child_text(item, "Size") or 0)
                mtime = _iso_ns(_child_text(item, "LastModified"))
                if rel.endswith("/") and size == 0:
                    pending = FileInfo(rel.rstrip("/") or rel, 0, mtime, is_dir=True)
                    pending_key = key
                    continue
                yield FileInfo(rel, size, mtime, etag=_etag(_child_text(item, "ETag")))
            if (_child_text(root, "IsTruncated") or "").lower() != "true":
                break
            token = _child_text(root, "NextContinuationToken")
            if not token:
                raise ConnectorError(
                    f"{self.name}: cannot list {self._where(None)} prefix /{self.prefix}: the"
                    " store says the listing goes on but gives no continuation token"
                )
            params = {**params, "continuation-token": token}
        if pending is not None:
            yield pending

    def root_exists(self) -> bool:
        """Whether the bucket exists (HEAD of the bucket). The prefix is not checked: it
        is part of the keys, not a folder, and an empty one is simply empty."""
        try:
            self._request("HEAD", None)
        except _Failure as exc:
            if exc.status == 404:
                return False
            raise self._error("check", None, exc) from None
        except (_Unreachable, _TlsFailure) as exc:
            raise self._error("check", None, exc) from None
        return True

    def _head(self, key: str) -> Any | None:
        headers = {"x-amz-checksum-mode": "ENABLED"} if self._sha256 else None
        try:
            return self._request("HEAD", key, headers=headers)
        except _Failure as exc:
            if exc.status == 404:
                return None
            raise self._error("stat", key, exc) from None
        except (_Unreachable, _TlsFailure) as exc:
            raise self._error("stat", key, exc) from None

    def stat(self, path: str) -> FileInfo | None:
        """HEAD of the object; when there is none, of the marker ``path/`` (an empty
        directory); None when neither exists."""
        if not path:
            return None
        key = self._key(path)
        response = self._head(key)
        if response is not None:
            h = response.headers
            return FileInfo(
                path,
                int(h.get("content-length") or 0),
                _http_date_ns(h.get("last-modified")),
                etag=_etag(h.get("etag")),
                sha256=_b64_sha256_hex(
                    h.get("x-amz-checksum-sha256"), h.get("x-amz-checksum-type")
                ),
            )
        marker = self._head(key + "/")
        if marker is not None:
            return FileInfo(
                path, 0, _http_date_ns(marker.headers.get("last-modified")), is_dir=True
            )
        return None

    def open_read(self, path: str) -> BinaryIO:
        key = self._key(path)
        response = self._call("read", key, "GET", stream=True)

        def fail(exc: BaseException) -> ConnectorError:
            return TransientError(
                self._scrub(f"{self.name}: cannot read {self._where(key)}: {_short(exc)}")
            )

        return _Body(response, fail)  # type: ignore[return-value]

    # -- writing ------------------------------------------------------------------------
    def _writable_key(self, what: str, path: str) -> str:
        key = self._key(path)
        if not path:
            raise ConnectorError(f"{self.name}: cannot {what} an empty name")
        if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
            raise ConnectorError(
                f"{self.name}: cannot {what} {path}: the key is longer than {MAX_KEY_BYTES} bytes"
            )
        return key

    def _upload_headers(self, key: str | None = None) -> dict[str, str]:
        """Headers of a new object: its storage class and, for an upload, a Content-Type
        guessed from the name's extension (what a browser needs when the bucket is
        served over HTTP; ``application/octet-stream`` when unknown)."""
        headers = {"x-amz-storage-class": self.storage_class} if self.storage_class else {}
        if key is not None:
            guessed, _ = mimetypes.guess_type(key, strict=False)
            headers["content-type"] = guessed or "application/octet-stream"
        return headers

    def put(
        self,
        path: str,
        stream: BinaryIO,
        size: int,
        *,
        part_size: int = 0,
        multipart_threshold: int = 0,
        mtime_ns: int | None = None,
    ) -> PutResult:
        """Upload ``stream`` (``size`` bytes) to ``path``: one PUT below the threshold, else
        a multipart upload that is aborted on any failure. ``mtime_ns`` is not kept (the
        store sets the upload time). ``size`` in the result is the byte count the store
        acknowledged (it enforces each request's Content-Length)."""
        key = self._writable_key("write", path)
        threshold = multipart_threshold if multipart_threshold > 0 else DEFAULT_THRESHOLD
        if size < threshold and size <= self.provider.max_single_put:
            return self._put_single(key, stream, size)
        ps = effective_part_size(size, part_size or DEFAULT_PART_SIZE, self.capabilities)
        return self._put_multipart(key, stream, ps)

    def _put_single(self, key: str, stream: BinaryIO, size: int) -> PutResult:
        buf = bytearray(size + 1)  # one byte more: a stream longer than announced is refused
        view = memoryview(buf)
        got = _read_into(stream, view)
        if got > size:
            raise ConnectorError(
                f"{self.name}: cannot write {self._where(key)}: the source gave more than"
                f" the {size} bytes announced"
            )
        body = view[:got]
        digest = hashlib.sha256(body).digest()
        headers = self._upload_headers(key)
        if self._sha256:
            headers["x-amz-checksum-sha256"] = base64.b64encode(digest).decode()
        response = self._call(
            "write", key, "PUT", headers=headers, body=body, payload_sha256=digest.hex()
        )
        h = response.headers
        return PutResult(
            size=got,
            etag=_etag(h.get("etag")),
            sha256=_b64_sha256_hex(h.get("x-amz-checksum-sha256"), h.get("x-amz-checksum-type")),
        )

    def _put_multipart(self, key: str, stream: BinaryIO, part_size: int) -> PutResult:
        headers = self._upload_headers(key)
        if self._sha256:
            headers["x-amz-checksum-algorithm"] = "SHA256"
        upload_id = self._start_upload("start upload of", key, headers)
        try:
            parts: list[tuple[int, str, str | None]] = []
            buf = bytearray(part_size)
            view = memoryview(buf)
            total = 0
            while True:
                got = _read_into(stream, view)
                if got == 0 and parts:
                    break
                number = len(parts) + 1
                if number > self.provider.max_parts:
                    raise ConnectorError(
                        f"{self.name}: cannot write {self._where(key)}: more than"
                        f" {self.provider.max_parts} parts of {part_size} bytes"
                    )
                body = view[:got]
                digest = hashlib.sha256(body).digest()
                part_headers = {}
                checksum = None
                if self._sha256:
                    checksum = base64.b64encode(digest).decode()
                    part_headers["x-amz-checksum-sha256"] = checksum
                response = self._call(
                    f"write part {number} of",
                    key,
                    "PUT",
                    params={"partNumber": str(number), "uploadId": upload_id},
                    headers=part_headers,
                    body=body,
                    payload_sha256=digest.hex(),
                )
                etag = response.headers.get("etag")
                if not etag:
                    raise ConnectorError(
                        f"{self.name}: cannot write {self._where(key)}: part {number} has no ETag"
                    )
                parts.append((number, etag, checksum))
                total += got
                if got < part_size:
                    break
            xml = "".join(
                f"<Part><PartNumber>{n}</PartNumber><ETag>{xml_escape(e)}</ETag>"
                + (f"<ChecksumSHA256>{c}</ChecksumSHA256>" if c else "")
                + "</Part>"
                for n, e, c in parts
            )
            etag = self._complete(key, upload_id, xml, [e for _, e, _ in parts])
        except BaseException:
            self._abort(key, upload_id)
            raise
        finally:
            self._active_uploads.discard(upload_id)
        return PutResult(size=total, etag=etag, parts=len(parts), part_size=part_size)

    def _start_upload(self, what: str, key: str, headers: dict[str, str]) -> str:
        """CreateMultipartUpload; returns the upload id (recorded as running). When a
        first request may have started an upload whose reply was lost (or the reply
        cannot be read), that upload is looked for and aborted."""
        started = time.time_ns()
        resent: list[bool] = []
        response = self._call(
            what, key, "POST", params={"uploads": ""}, headers=headers, resent=resent
        )
        try:
            upload_id = _child_text(self._xml(what, key, response.data), "UploadId")
            if not upload_id:
                raise TransientError(
                    f"{self.name}: cannot {what} {self._where(key)}: the reply has no UploadId"
                )
        except ConnectorError:
            self._abort_lost_uploads(key, started, keep=None)
            raise
        self._active_uploads.add(upload_id)
        if resent:
            self._abort_lost_uploads(key, started, keep=upload_id)
        return upload_id

    def _abort_lost_uploads(self, key: str, started_ns: int, keep: str | None) -> int:
        """Abort the uploads of exactly ``key`` initiated since ``started_ns`` (local
        clock, moved to the store's by its Date header), except ``keep`` and the ones
        running here: what a CreateMultipartUpload whose reply was lost started. Best
        effort; returns how many were aborted."""
        params = {"uploads": "", "prefix": key, "encoding-type": "url"}
        try:
            response = self._request("GET", None, params=params)
            root = ElementTree.fromstring(response.data)
        except Exception:
            return 0
        server_now = _http_date_ns(response.headers.get("date"))
        skew = server_now - time.time_ns() if server_now else 0
        since = started_ns + skew - 2_000_000_000  # the Date header has whole seconds
        aborted = 0
        for upload in _children(root, "Upload"):
            upload_id = _child_text(upload, "UploadId") or ""
            initiated = _iso_ns(_child_text(upload, "Initiated"))
            if (
                unquote_plus(_child_text(upload, "Key") or "") == key
                and upload_id
                and upload_id != keep
                and upload_id not in self._active_uploads
                and initiated is not None
                and initiated >= since
            ):
                aborted += self._abort(key, upload_id)
        return aborted

    def _complete(
        self, key: str, upload_id: str, parts_xml: str, part_etags: list[str] | None = None
    ) -> str | None:
        """CompleteMultipartUpload; returns the object's ETag. A 200 whose body is an
        error (S3 does that for slow completions) is an error too. When the first request's
        reply was lost and the retry finds the upload gone, the object's ETag tells
        whether that first request completed it."""
        body = f"<CompleteMultipartUpload>{parts_xml}</CompleteMultipartUpload>".encode()
        resent: list[bool] = []
        what = "complete upload of"
        try:
            response = self._request(
                "POST",
                key,
                params={"uploadId": upload_id},
                headers={"content-type": "application/xml"},
                body=body,
                resent=resent,
            )
        except _Failure as exc:
            want = _expected_multipart_etag(part_etags)
            if resent and exc.status == 404 and want is not None:
                head = self._head(key)
                if head is not None and _etag(head.headers.get("etag")) == want:
                    return want  # done by the request whose reply was lost
            raise self._error(what, key, exc) from None
        except (_Unreachable, _TlsFailure) as exc:
            raise self._error(what, key, exc) from None
        root = self._xml(what, key, response.data)
        if _local(root.tag) == "Error":
            failure = _Failure(
                500, _child_text(root, "Code") or "", _child_text(root, "Message") or ""
            )
            raise self._error("complete upload of", key, failure)
        return _etag(_child_text(root, "ETag"))

    def _abort(self, key: str, upload_id: str) -> bool:
        """Abort a multipart upload (best effort: a failure here is not reported over the
        error that caused it; ``abort_stale_uploads`` finds what is left a day later)."""
        try:
            self._request("DELETE", key, params={"uploadId": upload_id}, ok=(200, 204, 404))
        except Exception:
            return False
        return True

    def delete(self, path: str) -> None:
        """Delete the object and a directory marker ``path/``; missing is fine."""
        key = self._writable_key("delete", path)
        self._delete_key(key)
        self._delete_key(key + "/")

    def _delete_key(self, key: str) -> None:
        """DELETE one key; a missing key is fine, a missing bucket is not."""
        try:
            self._request("DELETE", key, ok=(200, 204))
        except _Failure as exc:
            if exc.status == 404 and exc.code != "NoSuchBucket":
                return
            raise self._error("delete", key, exc) from None
        except (_Unreachable, _TlsFailure) as exc:
            raise self._error("delete", key, exc) from None

    def make_dir(self, path: str) -> None:
        key = self._writable_key("create directory", path.rstrip("/"))
        self._call("create directory", key + "/", "PUT", body=b"")

    def move(self, path: str, new_path: str) -> None:
        """Server-side copy to ``new_path``, then delete ``path``. The object keeps its
        Content-Type also past the provider's single-copy limit (5 GiB on S3), where the
        copy is a multipart UploadPartCopy (which copies no metadata by itself)."""
        key = self._writable_key("move", path)
        self._writable_key("move to", new_path)
        response = self._head(key)
        if response is None:
            raise ConnectorError(f"{self.name}: cannot move {self._where(key)}: not found")
        size = int(response.headers.get("content-length") or 0)
        self._copy(
            self.bucket,
            key,
            self._key(new_path),
            size,
            DEFAULT_PART_SIZE,
            content_type=response.headers.get("content-type"),
        )
        self._delete_key(key)

    # -- server-side copies ---------------------------------------------------------------
    def can_copy_from(self, other: Any) -> bool:
        """Whether ``copy_from(other, ...)`` works: ``other`` is an S3 endpoint on the same
        store (endpoint URL) with the same credentials, and the provider copies."""
        if not isinstance(other, S3Endpoint) or not self.provider.server_copy:
            return False
        try:
            return self._fingerprint() == other._fingerprint()
        except ConnectorError:
            return False

    def copy_from(self, other: S3Endpoint, path: str, size: int, *, part_size: int) -> PutResult:
        """Copy ``path`` of ``other`` (same store, see ``can_copy_from``) to ``path`` here,
        inside the store: CopyObject up to the provider's single-request limit, else a
        multipart upload of UploadPartCopy ranges (aborted on failure)."""
        key = self._writable_key("copy to", path)
        return self._copy(other.bucket, other._key(path), key, size, part_size)

    def _copy(
        self,
        src_bucket: str,
        src_key: str,
        key: str,
        size: int,
        part_size: int,
        content_type: str | None = None,
    ) -> PutResult:
        """Copy inside the store (see :meth:`copy_from`); ``content_type``: the source's,
        given to a multipart copy (a single CopyObject copies the source's metadata)."""
        source = "/" + _uri_encode(f"{src_bucket}/{src_key}", "-_.~/")
        headers = self._upload_headers()
        if size <= self.provider.max_single_put:
            headers.update({"x-amz-copy-source": source, "x-amz-metadata-directive": "COPY"})
            response = self._call("copy to", key, "PUT", headers=headers, body=b"")
            root = self._xml("copy to", key, response.data)
            if _local(root.tag) == "Error":
                failure = _Failure(
                    500, _child_text(root, "Code") or "", _child_text(root, "Message") or ""
                )
                raise self._error("copy to", key, failure)
            return PutResult(size=size, etag=_etag(_child_text(root, "ETag")))
        ps = effective_part_size(size, part_size or DEFAULT_PART_SIZE, self.capabilities)
        ps = min(ps, self.provider.max_part_size)
        if content_type:
            headers["content-type"] = content_type
        upload_id = self._start_upload("start copy to", key, headers)
        try:
            xml = []
            etags = []
            for number, start in enumerate(range(0, size, ps), 1):
                end = min(size, start + ps) - 1
                response = self._call(
                    f"copy part {number} to",
                    key,
                    "PUT",
                    params={"partNumber": str(number), "uploadId": upload_id},
                    headers={
                        "x-amz-copy-source": source,
                        "x-amz-copy-source-range": f"bytes={start}-{end}",
                    },
                    body=b"",
                )
                etag = _child_text(self._xml("copy to", key, response.data), "ETag") or ""
                etags.append(etag)
                xml.append(
                    f"<Part><PartNumber>{number}</PartNumber><ETag>{xml_escape(etag)}</ETag></Part>"
                )
            etag = self._complete(key, upload_id, "".join(xml), etags)
        except BaseException:
            self._abort(key, upload_id)
            raise
        finally:
            self._active_uploads.discard(upload_id)
        return PutResult(size=size, etag=etag, parts=len(xml), part_size=ps)

    # -- housekeeping -------------------------------------------------------------------
    def abort_stale_uploads(self) -> int:
        """Abort the incomplete multipart uploads under the prefix that were initiated
        more than :data:`STALE_UPLOAD_AGE` (24 h) ago, and return how many. Such uploads
        are what a killed run leaves: invisible, but billed. Younger ones are left alone:
        another process (another plan whose prefix lies below this one, another tool) may
        be running them; a killed run's own leftovers go a day later (a bucket lifecycle
        rule "abort incomplete multipart uploads after N days" does the same). The age is
        measured on the store's clock (its Date header); an upload whose start time the
        store does not report is left alone."""
        params = {"uploads": "", "encoding-type": "url"}
        if self.prefix:
            params["prefix"] = self.prefix
        stale: list[tuple[str, str]] = []
        what = "list uploads in"
        while True:
            response = self._call(what, None, "GET", params=params)
            root = self._xml(what, None, response.data)
            now = _http_date_ns(response.headers.get("date")) or time.time_ns()
            cutoff = now - STALE_UPLOAD_AGE * 1_000_000_000
            for upload in _children(root, "Upload"):
                key = unquote_plus(_child_text(upload, "Key") or "")
                upload_id = _child_text(upload, "UploadId") or ""
                initiated = _iso_ns(_child_text(upload, "Initiated"))
                if (
                    upload_id
                    and upload_id not in self._active_uploads
                    and initiated is not None
                    and initiated <= cutoff
                ):
                    stale.append((key, upload_id))
            if (_child_text(root, "IsTruncated") or "").lower() != "true":
                break
            key_marker = _child_text(root, "NextKeyMarker")
            id_marker = _child_text(root, "NextUploadIdMarker")
            if not key_marker and not id_marker:
                raise ConnectorError(
                    f"{self.name}: cannot {what} {self._where(None)}: the store says the"
                    " listing goes on but gives no marker to continue from"
                )
            params = {
                **params,
                "key-marker": unquote_plus(key_marker or ""),
                "upload-id-marker": id_marker or "",
            }
        aborted = 0
        for key, upload_id in stale:
            try:
                self._request("DELETE", key, params={"uploadId": upload_id}, ok=(200, 204, 404))
            except (_Failure, _Unreachable, _TlsFailure) as exc:
                raise self._error("abort stale upload of", key, exc) from None
            aborted += 1
        return aborted

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.close()
        manager = getattr(self, "_proxy_manager", None)
        if manager is not None:
            manager.clear()


def _dns_bucket(bucket: str) -> bool:
    """Whether ``bucket`` can be a host name: lower-case DNS labels, 3 to 63 characters,
    not an IP address."""
    return 3 <= len(bucket) <= 63 and bool(_DNS_NAME_RE.match(bucket)) and not _is_ip(bucket)


def _expected_multipart_etag(part_etags: list[str] | None) -> str | None:
    """The ETag of an object completed from parts with these ETags (None when a part's
    ETag is not an MD5, as with SSE-KMS)."""
    if not part_etags:
        return None
    digests = []
    for value in part_etags:
        etag = _etag(value) or ""
        if not re.fullmatch(r"[0-9a-f]{32}", etag):
            return None
        digests.append(bytes.fromhex(etag))
    return multipart_etag(digests)


def _proxy_for(scheme: str, host: str) -> tuple[str, str | None] | None:
    """The proxy for ``scheme://host`` from the environment (``HTTPS_PROXY``,
    ``HTTP_PROXY``, ``NO_PROXY``, as urllib and botocore read them): its URL without
    credentials, and ``user:password`` when it has some; None to go direct."""
    import urllib.request

    proxy = urllib.request.getproxies_environment().get(scheme)
    if not proxy or urllib.request.proxy_bypass_environment(host):
        return None
    if "://" not in proxy:
        proxy = f"http://{proxy}"
    parts = urlsplit(proxy)
    auth = None
    if parts.username is not None:
        auth = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    return f"{parts.scheme}://{netloc}", auth


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host == "localhost"
    return True


def _short(exc: BaseException) -> str:
    """A one-line reason from a urllib3/socket error (its innermost cause)."""
    reason = getattr(exc, "reason", None) or exc
    text = str(reason).splitlines()[0] if str(reason) else type(reason).__name__
    return re.sub(r"<urllib3\.[^>]*>: ", "", text)
