"""The cases of http_semantics.py about what is stored and served to whom: no-store, Vary,
invalidation by unsafe methods, shared and private caches, stale-if-error, the request's
directives, only-if-cached, hermetic mode. Run them through http_semantics.py (this file
is not a driver of its own)."""

CASES = []


def case(fn):
    CASES.append((fn.__name__, fn))
    return fn


def _control_hit(c, p="/control", env=None):
    """A positive control: a max-age=3600 response on this cache is a hit, so that 'not
    stored' findings of the same case cannot come from a cache that stores nothing."""
    c.script(p, headers=[["Cache-Control", "max-age=3600"]], body="control\n")
    c.curl("-i", c.url(p), env=env)
    c.no_request(c.curl("-i", c.url(p), env=env))


@case
def no_store_response_never_stored(c):
    """Cache-Control: no-store: every run is a plain request to the origin (a max-age
    control on the same cache is a hit)."""
    c.script("/r", headers=[["Cache-Control", "no-store"], ["ETag", '"ns"']],
             body="no-store\n", conditional=True)
    for _ in range(2):
        r = c.curl("-i", c.url("/r"))
        c.one_request(r, inm=None, ims=None, status=200)
        c.sees(r, body=b"no-store\n")
    _control_hit(c)


@case
def vary_selects_the_variant_of_the_request(c):
    """Vary: X-Variant: a and b are stored apart and each served to its own requests; no
    header is a third variant; header names compare case-insensitively."""
    c.script("/r", headers=[["Cache-Control", "max-age=3600"], ["Vary", "X-Variant"]],
             body="variant\n", echo=["X-Variant"])
    runs = [("X-Variant: a", "a", True), ("X-Variant: b", "b", True),
            ("X-Variant: a", "a", False), ("X-Variant: b", "b", False),
            (None, "(absent)", True), (None, "(absent)", False),
            ("x-variant: a", "a", False)]
    for header, value, fetched in runs:
        r = c.curl("-i", *(("-H", header) if header else ()), c.url("/r"))
        if fetched:
            c.one_request(r, status=200)
            if r.requests:
                got = [v for k, v in r.requests[0]["headers"] if k.lower() == "x-variant"]
                c.expect(got == ([] if header is None else [value]), r,
                         "the origin saw X-Variant %r" % got)
        else:
            c.no_request(r)
        c.sees(r, body=("variant\nx-variant: %s\n" % value).encode(),
               headers={"Vary": ["X-Variant"]})


@case
def vary_star_never_served(c):
    """Vary: * is never served from the cache (a control without it is a hit)."""
    c.script("/r", headers=[["Cache-Control", "max-age=3600"], ["Vary", "*"]],
             body="vary star\n")
    for _ in range(2):
        r = c.curl("-i", c.url("/r"))
        c.one_request(r, status=200)
        c.sees(r, body=b"vary star\n")
    _control_hit(c)


def _invalidation(c, unsafe_args, status=200, headers=(), target="/item", unsafe_path=None,
                  invalidated=True):
    """GET `target` stored (proved by a hit); then curl with `unsafe_args` against
    `unsafe_path` (default `target`) with the same options otherwise (-i), answered with
    `status` and `headers`; the origin's GET answer changes to v2. When `invalidated`, the
    next GET of `target` reaches the origin and shows v2, and the one after is a hit
    again; otherwise it stays a hit on v1."""
    unsafe_path = unsafe_path or target
    c.script(target, method="GET", headers=[["Cache-Control", "max-age=3600"],
                                            ["ETag", '"v1"']], body="v1\n", conditional=True)
    c.curl("-i", c.url(target))
    c.no_request(c.curl("-i", c.url(target)))
    method = unsafe_args[unsafe_args.index("-X") + 1] if "-X" in unsafe_args else "POST"
    c.script(unsafe_path, method=method, status=status, headers=list(headers),
             body="%s answered\n" % method)
    r = c.curl("-i", *unsafe_args, c.url(unsafe_path))
    c.one_request(r, method=method, status=status)
    c.script(target, method="GET", headers=[["Cache-Control", "max-age=3600"],
                                            ["ETag", '"v2"']], body="v2\n", conditional=True)
    r = c.curl("-i", c.url(target))
    if invalidated:
        # Removed or marked invalid: either way the origin is asked (RFC 9111 4.4).
        c.one_request(r, status=200)
        c.sees(r, body=b"v2\n")
        c.no_request(c.curl("-i", c.url(target)))
    else:
        c.no_request(r)
        c.sees(r, body=b"v1\n")


@case
def put_invalidates_the_stored_get(c):
    """A 204 to PUT on the URL: the next GET reaches the origin and sees the new
    version."""
    _invalidation(c, ["-X", "PUT", "-d", "new"], status=204)


@case
def post_invalidates_the_stored_get(c):
    """A 200 to POST on the URL: the next GET reaches the origin and sees the new
    version."""
    _invalidation(c, ["-d", "new"], status=200)


@case
def delete_and_patch_invalidate_the_stored_get(c):
    """DELETE and PATCH answered 200 invalidate their URL's stored GET."""
    _invalidation(c, ["-X", "DELETE"], status=200, target="/deleted")
    _invalidation(c, ["-X", "PATCH", "-d", "x"], status=200, target="/patched")


@case
def post_invalidates_location_and_content_location(c):
    """A POST's same-origin Location (absolute URL) and Content-Location (absolute path)
    lose their stored GET responses."""
    _invalidation(c, ["-d", "new"], status=201, unsafe_path="/collection",
                  headers=[["Location", c.url("/created")]], target="/created")
    _invalidation(c, ["-d", "again"], status=200, unsafe_path="/collection",
                  headers=[["Content-Location", c.path("/described")]], target="/described")


@case
def post_keeps_a_cross_origin_location(c):
    """A Location on another origin (another port) is not invalidated."""
    o = c.another_origin()
    c.script("/elsewhere", origin=o, headers=[["Cache-Control", "max-age=3600"]],
             body="elsewhere\n")
    c.curl("-i", c.url("/elsewhere", o), origin=o)
    c.no_request(c.curl("-i", c.url("/elsewhere", o), origin=o))
    c.script("/collection", method="POST", status=201,
             headers=[["Location", c.url("/elsewhere", o)]], body="created\n")
    c.one_request(c.curl("-i", "-d", "x", c.url("/collection")), method="POST", status=201)
    r = c.curl("-i", c.url("/elsewhere", o), origin=o)
    c.no_request(r)
    c.sees(r, body=b"elsewhere\n")


@case
def error_answer_to_post_does_not_invalidate(c):
    """A 500 to POST leaves the stored GET in place (still a hit on the old version)."""
    _invalidation(c, ["-d", "new"], status=500, invalidated=False)
    c.no_request(c.curl("-i", c.url("/item")))


def _stale_kept(c, p, cache_control, origin=None, env=None):
    """A response stored already stale (Date 2 h ago)."""
    r = c.stored(p, cache_control, etag='"old"', date_offset=-7200, text="kept %s\n" % p[1:],
                 env=env, origin=origin)
    c.one_request(r, status=200)


def _down(c, p, origin=None):
    c.script(p, origin=origin, status=503, headers=[["Content-Type", "text/plain"]],
             body="down\n")


def _served_stale(c, p, origin=None, env=None, refused=False):
    """The stale entry instead of the error, to plain curl and to curl -f (FAILONERROR
    must not fail a transfer whose 5xx the cache replaces); each run asked the origin."""
    for fail in ((), ("-f",)):
        r = c.curl(*fail, "-i", c.url(p, origin), origin=origin, env=env)
        if not refused:
            c.one_request(r, status=503)
        c.sees(r, body=("kept %s\n" % p[1:]).encode())


def _error_passed(c, p, code, origin=None, env=None, refused=False):
    r = c.curl("-f", "-i", c.url(p, origin), origin=origin, env=env)
    if not refused:
        c.one_request(r, status=503)
    c.expect(r.code == code, r, "exit code %d, expected %d (the error, not a stale entry)"
             % (r.code, code))


@case
def stale_if_error_on_5xx(c):
    """A response with stale-if-error=86400 stored stale: the origin's 503 is replaced by
    the stale response (exit 0 under -f); without the directive, or stale for longer than
    it allows, the 503 reaches curl."""
    _stale_kept(c, "/sie", "max-age=60, stale-if-error=86400")
    _stale_kept(c, "/plain", "max-age=60")
    _stale_kept(c, "/too-old", "max-age=60, stale-if-error=600")  # stale for 7140 s
    for p in ("/sie", "/plain", "/too-old"):
        _down(c, p)
    _served_stale(c, "/sie")
    _error_passed(c, "/plain", 22)
    _error_passed(c, "/too-old", 22)


@case
def stale_if_error_when_connection_refused(c):
    """The origin is gone (connection refused): the stale-if-error entry is served with
    exit 0; without the directive curl fails (exit 7)."""
    o = c.another_origin()
    _stale_kept(c, "/sie", "max-age=60, stale-if-error=86400", origin=o)
    _stale_kept(c, "/plain", "max-age=60", origin=o)
    o.stop_and_refuse()
    _served_stale(c, "/sie", origin=o, refused=True)
    _error_passed(c, "/plain", 7, origin=o, refused=True)


@case
def stale_if_error_setting(c):
    """CURLCACHE_STALE_IF_ERROR=86400 serves stale entries without the directive on 503 and
    on a refused connection, but never one that said must-revalidate."""
    env = {"CURLCACHE_STALE_IF_ERROR": "86400"}
    _stale_kept(c, "/plain", "max-age=60", env=env)
    _stale_kept(c, "/must", "max-age=60, must-revalidate", env=env)
    _down(c, "/plain")
    _down(c, "/must")
    _served_stale(c, "/plain", env=env)
    _error_passed(c, "/must", 22, env=env)
    o = c.another_origin()
    _stale_kept(c, "/refused", "max-age=60", origin=o, env=env)
    o.stop_and_refuse()
    _served_stale(c, "/refused", origin=o, env=env, refused=True)


# Shared and private caches ------------------------------------------------------------

SHARED = {"CURLCACHE_CACHE_TYPE": "shared"}
PRIVATE = {"CURLCACHE_CACHE_TYPE": "private"}


def _second_use(c, p, cache_control, env, hit, date_offset=0, args=()):
    """Stores `p` (fetched with `args`) under `env`; the second fetch must be a hit, or a
    request to the origin (conditional when the response was stored)."""
    c.stored(p, cache_control, etag='"x"', date_offset=date_offset, env=env, args=args)
    r = c.curl("-i", *args, c.url(p), env=env)
    if hit is True:
        c.no_request(r)
    elif hit == "revalidated":
        c.conditional(r, inm='"x"')
    else:
        c.one_request(r, inm=None, status=200)
    c.sees(r, body=(p + "\n").encode())


@case
def shared_cache_prefers_s_maxage(c):
    """Date 10 min ago: max-age=60, s-maxage=3600 is stale for a private cache, fresh for a
    shared one; max-age=3600, s-maxage=60 the other way round."""
    both = "max-age=60, s-maxage=3600"
    _second_use(c, "/long-private", both, PRIVATE, "revalidated", -600)
    _second_use(c, "/long-shared", both, SHARED, True, -600)
    both = "max-age=3600, s-maxage=60"
    _second_use(c, "/short-private", both, PRIVATE, True, -600)
    _second_use(c, "/short-shared", both, SHARED, "revalidated", -600)


@case
def shared_cache_never_stores_private(c):
    """private responses: stored by the default cache type (private), not by a shared
    cache."""
    _second_use(c, "/private", "private, max-age=3600", None, True)
    _second_use(c, "/shared", "private, max-age=3600", SHARED, False)


@case
def shared_cache_and_authorization(c):
    """A request with Authorization: a shared cache stores the response only with public,
    s-maxage or must-revalidate; a private cache stores it."""
    auth = ("-H", "Authorization: Bearer t0ken")
    _second_use(c, "/plain-shared", "max-age=3600", SHARED, False, args=auth)
    _second_use(c, "/public", "public, max-age=3600", SHARED, True, args=auth)
    _second_use(c, "/s-maxage", "s-maxage=3600", SHARED, True, args=auth)
    _second_use(c, "/must-revalidate", "must-revalidate, max-age=3600", SHARED, True,
                args=auth)
    _second_use(c, "/plain-private", "max-age=3600", PRIVATE, True, args=auth)


# The request's directives ------------------------------------------------------------

@case
def request_no_cache_and_max_age_0_revalidate(c):
    """A fresh entry with the request's Cache-Control: no-cache, max-age=0 or Pragma:
    no-cache: one If-None-Match request, 304, the stored response; the request's no-
    store keeps a response out."""
    c.stored("/r", "max-age=3600", etag='"q1"', text="stored\n")
    c.no_request(c.curl("-i", c.url("/r")))
    for h in ("Cache-Control: no-cache", "Cache-Control: max-age=0", "Pragma: no-cache"):
        r = c.curl("-i", "-H", h, c.url("/r"))
        c.conditional(r, inm='"q1"')
        c.sees(r, body=b"stored\n")
    c.no_request(c.curl("-i", c.url("/r")))
    # Request no-store: the response is not stored (the next plain request is a miss).
    c.script("/no-store", headers=[["Cache-Control", "max-age=3600"]], body="not kept\n")
    c.one_request(c.curl("-i", "-H", "Cache-Control: no-store", c.url("/no-store")))
    c.one_request(c.curl("-i", c.url("/no-store")), inm=None, ims=None, status=200)
    c.no_request(c.curl("-i", c.url("/no-store")))


@case
def request_max_stale_min_fresh_max_age(c):
    """The request's max-stale serves a stale entry without asking (unless stale for
    longer); min-fresh and max-age=N demand a revalidation when the entry is not fresh
    enough."""
    c.stored("/stale", "max-age=60", etag='"s"', date_offset=-7200)
    for h in ("Cache-Control: max-stale=86400", "Cache-Control: max-stale"):
        r = c.curl("-i", "-H", h, c.url("/stale"))
        c.no_request(r)
        c.sees(r, body=b"/stale\n")
    c.conditional(c.curl("-i", "-H", "Cache-Control: max-stale=60", c.url("/stale")),
                  inm='"s"')
    # Age 600 s of max-age=3600.
    c.stored("/aged", "max-age=3600", etag='"a"', date_offset=-600)
    for h in ("Cache-Control: min-fresh=60", "Cache-Control: max-age=86400"):
        c.no_request(c.curl("-i", "-H", h, c.url("/aged")))
    c.conditional(c.curl("-i", "-H", "Cache-Control: min-fresh=7200", c.url("/aged")),
                  inm='"a"')
    c.stored("/aged2", "max-age=3600", etag='"b"', date_offset=-600)
    c.conditional(c.curl("-i", "-H", "Cache-Control: max-age=300", c.url("/aged2")),
                  inm='"b"')


# Serving without the origin ----------------------------------------------------------

@case
def only_if_cached_miss_is_504(c):
    """Cache-Control: only-if-cached: a stored entry is served; nothing stored gives 504
    Gateway Timeout as a caching proxy would (exit 0, or 22 with -f); never a request."""
    c.script("/stored", headers=[["Cache-Control", "max-age=3600"]], body="stored\n")
    c.curl("-o", "/dev/null", c.url("/stored"))
    oic = ("-H", "Cache-Control: only-if-cached")
    r = c.curl("-o", "/dev/null", "-w", "%{http_code}", *oic, c.url("/stored"))
    c.no_request(r)
    c.expect(r.out == b"200" and r.code == 0, r, "printed %r exit %d, expected 200 exit 0"
             % (r.out, r.code))
    c.script("/never", headers=[["Cache-Control", "max-age=3600"]], body="never\n")
    r = c.curl("-o", "/dev/null", "-w", "%{http_code}", *oic, c.url("/never"))
    c.no_request(r)
    c.expect(r.out == b"504" and r.code == 0, r, "printed %r exit %d, expected 504 exit 0"
             % (r.out, r.code))
    r = c.curl("-f", "-o", "/dev/null", "-w", "%{http_code}", *oic, c.url("/never"))
    c.no_request(r)
    c.expect(r.out == b"504" and r.code == 22, r, "printed %r exit %d, expected 504 exit 22"
             % (r.out, r.code))
    r = c.curl("-i", *oic, c.url("/never"))
    c.sees(r, status=504)
    # A stale entry is no answer either (the request allows no staleness): 504, no
    # request; with max-stale covering it, the stale entry.
    c.script("/old", date=c.date(-7200), headers=[["Cache-Control", "max-age=60"],
                                                  ["ETag", '"old"']], body="old\n")
    c.curl("-o", "/dev/null", c.url("/old"))
    r = c.curl("-o", "/dev/null", "-w", "%{http_code}", *oic, c.url("/old"))
    c.no_request(r)
    c.expect(r.out == b"504", r, "printed %r for a stale entry, expected 504" % r.out)
    r = c.curl("-o", "/dev/null", "-w", "%{http_code}", "-H",
               "Cache-Control: only-if-cached, max-stale", c.url("/old"))
    c.no_request(r)
    c.expect(r.out == b"200", r, "printed %r with max-stale, expected 200" % r.out)


@case
def hermetic_mode_serves_regardless_of_origin_freshness(c):
    """CURLCACHE_HERMETIC=1: no-cache, max-age=0 and long-stale responses are served
    without asking the origin; no-store is still never stored; CURLCACHE_EXPIRE_AFTER
    alone decides when an entry expires."""
    env = {"CURLCACHE_HERMETIC": "1"}
    for p, date_offset, cc in (("/no-cache", 0, "no-cache"), ("/max-age-0", 0, "max-age=0"),
                               ("/long-stale", -7200, "max-age=60")):
        r1 = c.stored(p, cc, etag='"h"', date_offset=date_offset, env=env)
        for _ in range(2):
            r = c.curl("-i", c.url(p), env=env)
            c.no_request(r)
            c.same_output(r, r1)
    c.script("/no-store", headers=[["Cache-Control", "no-store"]], body="no-store\n")
    for _ in range(2):
        c.one_request(c.curl("-i", c.url("/no-store"), env=env))
    # The config's lifetime, not the origin's: stale 2 h later (libfaketime) despite the
    # origin's max-age=86400, and then fetched again.
    env = dict(env, CURLCACHE_EXPIRE_AFTER="3600")
    c.stored("/config-expiry", "max-age=86400", etag='"h"', env=env)
    c.no_request(c.curl("-i", c.url("/config-expiry"), env=env))
    r = c.curl("-i", c.url("/config-expiry"), env=env, faketime="+2h")
    c.one_request(r)
    c.sees(r, body=b"/config-expiry\n")
