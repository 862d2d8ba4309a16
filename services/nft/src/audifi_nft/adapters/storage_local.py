"""Where nft's media storage used to live: the port (`MediaStorage`), `LocalStorage` and
`InMemoryStorage` are the kit's now, `audifi_kit.media.storage`, shared with every service
that keeps files. Re-exported here for nft's tests and benches; nft's modules import the kit.
"""

from audifi_kit.media.storage import InMemoryStorage as InMemoryStorage
from audifi_kit.media.storage import LocalStorage as LocalStorage
from audifi_kit.media.storage import MediaStorage as MediaStorage
