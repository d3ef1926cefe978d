"""What differs between S3-compatible stores, as data (one :class:`Provider` per store).

``connectors/files/s3.py`` reads these records and never tests a provider's name, so adding
a store is adding an entry to :data:`PROVIDERS`. Sources for each field are the stores'
public documentation; where a store was checked against a live server (SeaweedFS in the
test suite) that is said.

ETag of a single-request upload: the hex MD5 of the content on every store listed here,
*except* for objects encrypted with SSE-KMS or SSE-C (AWS, OBS, OSS, MinIO with KMS), whose
ETag is not an MD5. ``etag_is_md5`` states the plain case; a connection whose bucket
encrypts with a KMS key should rely on the SHA-256 checksum (``checksum = "sha256"``) or on
size only. OSS writes ETags in upper case; the connector lower-cases every ETag.
"""

from __future__ import annotations

from dataclasses import dataclass

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30


@dataclass(frozen=True)
class Provider:
    """One S3-compatible store.

    - ``title``: for messages and ``describe()``
    - ``addressing``: default URL style, ``"virtual"`` (``bucket.host/key``) or ``"path"``
      (``host/bucket/key``)
    - ``etag_is_md5``: the ETag of a single-request upload is the MD5 of the content
      (unless the object is encrypted with SSE-KMS/SSE-C, see the module docstring)
    - ``sha256_checksums``: the store keeps ``x-amz-checksum-sha256`` (the S3 "additional
      checksums") given on upload and returns it from HEAD
    - ``storage_classes``: names accepted in ``x-amz-storage-class``; None = not checked
    - ``custom_storage_classes``: the store lets its administrators define more classes
      (a name outside the list is passed through instead of refused)
    - ``max_parts`` / ``min_part_size`` / ``max_part_size``: multipart limits (the last part
      may be smaller than the minimum)
    - ``max_single_put``: largest object one PUT (and one CopyObject) may create
    - ``server_copy``: CopyObject / UploadPartCopy work (also across buckets of one endpoint)
    """

    title: str
    addressing: str
    etag_is_md5: bool = True
    sha256_checksums: bool = False
    storage_classes: tuple[str, ...] | None = ("STANDARD",)
    custom_storage_classes: bool = False
    max_parts: int = 10_000
    min_part_size: int = 5 * MIB
    max_part_size: int = 5 * GIB
    max_single_put: int = 5 * GIB
    server_copy: bool = True


PROVIDERS: dict[str, Provider] = {
    # Amazon S3: virtual-hosted style is the default (path style is deprecated);
    # additional checksums since 2022.
    "aws": Provider(
        title="Amazon S3",
        addressing="virtual",
        sha256_checksums=True,
        storage_classes=(
            "STANDARD",
            "STANDARD_IA",
            "ONEZONE_IA",
            "INTELLIGENT_TIERING",
            "GLACIER_IR",
            "GLACIER",
            "DEEP_ARCHIVE",
        ),
    ),
    # Huawei Cloud OBS through its S3-compatible API: virtual-hosted style; no
    # x-amz-checksum-* support; WARM/COLD are its infrequent-access and archive classes.
    "obs": Provider(
        title="Huawei OBS",
        addressing="virtual",
        storage_classes=("STANDARD", "WARM", "COLD", "DEEP_ARCHIVE"),
    ),
    # Aliyun OSS through its S3-compatible API: virtual-hosted style only; parts may be
    # as small as 100 KiB; upper-case ETags; no x-amz-checksum-* support.
    "oss": Provider(
        title="Aliyun OSS",
        addressing="virtual",
        storage_classes=("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive"),
        min_part_size=100 * KIB,
    ),
    # MinIO: path style by default; additional checksums supported.
    "minio": Provider(
        title="MinIO",
        addressing="path",
        sha256_checksums=True,
        storage_classes=("STANDARD", "REDUCED_REDUNDANCY"),
    ),
    # SeaweedFS's S3 gateway: path style; keeps and returns x-amz-checksum-sha256;
    # accepts (and reports back) the AWS class names below, refuses others with
    # InvalidStorageClass; the class changes nothing in where it stores data.
    # (All checked against `weed mini` 4.48.)
    "seaweedfs": Provider(
        title="SeaweedFS",
        addressing="path",
        sha256_checksums=True,
        storage_classes=(
            "STANDARD",
            "REDUCED_REDUNDANCY",
            "STANDARD_IA",
            "ONEZONE_IA",
            "INTELLIGENT_TIERING",
            "GLACIER_IR",
            "GLACIER",
            "DEEP_ARCHIVE",
            "OUTPOSTS",
            "SNOW",
        ),
    ),
    # Ceph RGW: path style unless rgw_dns_name is set; additional checksums only from
    # Squid (19.x) on, so not assumed; administrators add storage classes per placement.
    "ceph": Provider(
        title="Ceph RGW",
        addressing="path",
        storage_classes=("STANDARD",),
        custom_storage_classes=True,
    ),
    # Anything else that speaks S3: the conservative common ground.
    "other": Provider(
        title="S3-compatible store",
        addressing="path",
        storage_classes=None,
    ),
}


def provider_names() -> tuple[str, ...]:
    """The accepted values of the ``provider`` option."""
    return tuple(PROVIDERS)
