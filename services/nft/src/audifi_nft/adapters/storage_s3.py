"""Where nft's S3 media storage used to live: `S3Storage` (and the `PresignedUpload` form it
answers) is the kit's now, `audifi_kit.media.s3`, shared with every service that keeps files.
Re-exported here for nft's tests; nft's modules import the kit.
"""

from audifi_kit.media.s3 import PresignedUpload as PresignedUpload
from audifi_kit.media.s3 import S3Storage as S3Storage
