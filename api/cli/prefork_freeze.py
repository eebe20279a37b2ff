"""Imported last by the dialer workers' forkserver: freezes what it preloaded.

`gc.freeze()` moves every object alive now into a generation the collector
never scans. Without it, the first collection in each forked worker would
touch the header of every preloaded object and so copy nearly every shared
page into the worker (Python's documentation recommends it before forking).
Importing this anywhere else would only make garbage uncollectable.
"""

import gc

gc.collect()
gc.freeze()
