"""Uploaded media, for any service that keeps files: the port and its adapters.

* `audifi_kit.media.kinds`: what a file is (`MediaKind`, sniffed from its first bytes:
  `sniff_kinds`), the size limit, the refusals (`NotAllowedMedia` 415, `UploadTooLarge` 413)
  and what a store answers (`StoredObject`: content-addressed, SHA-256 and IPFS CIDv1).
* `audifi_kit.media.intake`: the rules every adapter holds an upload to, chunk by chunk.
* `audifi_kit.media.storage`: the port (`MediaStorage`), `LocalStorage` (files under a
  directory) and `InMemoryStorage` (its twin for tests).
* `audifi_kit.media.s3`: `S3Storage` (any S3-compatible store; pre-signed uploads and
  downloads), apart so that importing the rest never loads boto.

What a service keeps where (its key prefixes), and who may use an upload, stays with the
service: nft's `StagedUpload`, for one.
"""
