# SPDX-License-Identifier: MIT
"""Configurations for bench/bench.py: the neutral nginx backends, and keel, HAProxy and nginx
as proxies and as static file servers, each tuned as its own documentation recommends for many
concurrent keep-alive clients. Each starter returns (Popen, port); `size` carries the load:

    size = {"conns": largest connection count the instance will see,
            "maxconn": the frontend/global connection ceiling,
            "pool": idle server connections each worker may keep}

Sources for the peers' settings (read 2026-12; cited so that a reader can check them):
  HAProxy 2.6 configuration manual, https://docs.haproxy.org/2.6/configuration.html
    - "http-reuse": "safe" is "the recommended strategy" and the default since 2.0: idle
      server connections are shared between client connections (keep-alive to servers);
    - "option http-keep-alive": the default mode, client and server sides kept open;
    - "nbthread": one process, N threads (the modern replacement of nbproc);
    - "maxconn" (global): per-process ceiling, also sizes the fd limit; its default is derived
      from `ulimit -n`, so it is set explicitly above the load.
  nginx, http://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive
    - "keepalive N": the idle upstream connections cached by each worker; the same page says
      that for HTTP "proxy_http_version should be set to 1.1 and the Connection header field
      should be cleared" (proxy_set_header Connection "");
    - "keepalive_requests" (upstream, 1.15.3+; core, default 1000 since 1.19.10): requests
      over one connection before it is closed; raised so that no connection is recycled.
  nginx, http://nginx.org/en/docs/http/ngx_http_core_module.html and the NGINX admin guide
    "Serve Static Content" (https://docs.nginx.com/nginx/admin-guide/web-server/
    serving-static-content/): sendfile on, tcp_nopush on (with sendfile), open_file_cache
    (max=N inactive=T, with open_file_cache_valid / _min_uses / _errors);
    worker_processes set to the worker count (one per core, "auto", is the usual advice).
TLS termination (the tls section; size["tls"] set), read 2026-12:
  HAProxy 2.6 manual: "bind ... ssl crt <pem>" (certificate and key in one file), "alpn";
    "ssl-default-bind-ciphers" / "ssl-default-bind-ciphersuites" / "ssl-default-bind-options
    ssl-min-ver TLSv1.2" (global); "tune.ssl.cachesize" (the shared session cache, 20000
    entries by default; set above the load) and "tune.ssl.lifetime" (300 s); TLS tickets are
    on unless "no-tls-tickets"; and https://www.haproxy.com/documentation/haproxy-
    configuration-tutorials/ssl-tls/ (ssl termination) for the same bind line.
  nginx, http://nginx.org/en/docs/http/configuring_https_servers.html and
    http://nginx.org/en/docs/http/ngx_http_ssl_module.html: "listen ... ssl",
    ssl_certificate / ssl_certificate_key, "ssl_session_cache shared:SSL:10m" (about 40000
    sessions) and ssl_session_timeout ("HTTPS server optimization": a shared cache and a
    longer timeout reduce the handshakes), ssl_session_tickets on (its default),
    ssl_protocols TLSv1.2 TLSv1.3, ssl_ciphers as keel's; worker_processes as keel's workers.
  keel: "bind ... tls" and "certificate", its defaults (Mozilla "intermediate", tickets).
  HAProxy "http-reuse always" in the tls section (size["http_reuse"]): with "safe" the first
    request of every client connection goes over a new server connection (the 2.6 manual,
    "http-reuse"), and the handshake loads make one request per client connection, so HAProxy
    would also pay a TCP connect per handshake where keel and nginx take a pooled one;
    "always" (first requests may use idle connections) is for servers known to keep their
    connections open, which these nginx backends are (keepalive_timeout 300s).
  All three get the same TLS 1.2 cipher list (keel's default, Mozilla intermediate without
  DHE) and OpenSSL's default TLS 1.3 suites and groups; the client (wrk, tls_load) offers
  OpenSSL's defaults, so each negotiates TLS 1.3, TLS_AES_256_GCM_SHA384 and X25519
  (tls_load prints what it got).
"""
import os

from benchlib import TMP, free_port, spawn

NOFILE = 20000      # run.sh raises ulimit -n to this; the hard limit on this machine

# keel's default TLS 1.2 ciphers (src/tls/tls_ctx.h KEEL_TLS_DEFAULT_CIPHERS), given to the
# peers too; TLS 1.3 suites and groups stay OpenSSL's defaults everywhere.
TLS12_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                 "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                 "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")


def _nginx_prefix(name):
    prefix = os.path.join(TMP, name)
    os.makedirs(prefix, exist_ok=True)
    return prefix


def _nginx_main(prefix, workers, worker_connections):
    """The part common to every nginx: foreground, no access log, temp dirs under prefix."""
    # user root: when run as root, workers would otherwise drop to "nobody" and could not
    # read the 0700 temp dir that holds the static files
    user = "user root;\n" if os.geteuid() == 0 else ""
    return user + """worker_processes %d;
worker_rlimit_nofile %d;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections %d; }
""" % (workers, NOFILE, prefix, prefix, worker_connections), """
    access_log off;
    client_body_temp_path %s/client_body;
    proxy_temp_path %s/proxy;
    fastcgi_temp_path %s/fastcgi;
    uwsgi_temp_path %s/uwsgi;
    scgi_temp_path %s/scgi;
""" % ((prefix,) * 5)


def _spawn_nginx(prefix, conf_text, logname):
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(conf_text)
    argv = ["nginx", "-p", prefix + "/", "-e", prefix + "/error.log", "-c", conf,
            "-g", "daemon off;"]
    return spawn(argv, logname)


# ---------------------------------------------------------------------------------------------
# backends: nginx, 1 worker each, a small fixed body, connections never recycled

def start_backend(name):
    port = free_port()
    prefix = _nginx_prefix("backend-" + name)
    main, http = _nginx_main(prefix, 1, NOFILE - 100)
    text = main + """http {%s
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:%d;
        location / {
            add_header X-Server %s;
            return 200 "hello from %s\\n";
        }
        # connections accepted so far: how many server connections a proxy opened
        location = /bench-status { stub_status; }
    }
}
""" % (http, port, name, name)
    return _spawn_nginx(prefix, text, "backend-" + name), port


# ---------------------------------------------------------------------------------------------
# proxies in front of the backends. The same request reaches the servers through each: keel
# always forwards the client's Host and writes X-Forwarded-For, -Proto and -Host, so HAProxy
# ("option forwardfor", "http-request set-header") and nginx ("proxy_set_header") are asked
# for the same, as a production configuration would.

def start_keel(binary, logname, backends, workers, size):
    port = free_port()
    conf = os.path.join(TMP, "%s-w%d-c%d.conf" % (logname, workers, size["conns"]))
    servers = "\n".join("    server %s 127.0.0.1:%d;" % (n, p) for n, p in backends)
    # keepalive is per server and per worker, so it is at least nginx's per-worker pool;
    # BENCH_KEEL_KEEPALIVE overrides it (e.g. 32, keel's default, to see what a pool smaller
    # than the load costs: connections closed on return to the pool and opened again).
    pool = int(os.environ.get("BENCH_KEEL_KEEPALIVE", "0")) or size["pool"]
    tls = size.get("tls")
    bind = "127.0.0.1:%d tls;\n    certificate %s %s" % (port, tls["cert"], tls["key"]) \
        if tls else "127.0.0.1:%d" % port
    with open(conf, "w") as f:
        f.write("""global { workers %d; log_level warn; timeout_drain 1s; }
frontend bench {
    bind %s;
    mode http;
    backend be;
    access_log off;
    maxconn %d;
}
backend be {
    mode http;
    balance roundrobin;
%s
    keepalive %d;
}
""" % (workers, bind, size["maxconn"], servers, pool))
    return spawn([binary, "run", "-c", conf], logname), port


# HAProxy stops keeping idle server connections once a share of its descriptors is in use
# ("tune.pool-low-fd-ratio", default 20%, and "tune.pool-high-fd-ratio", 25%, in the 2.6
# manual), and its descriptor count follows the global maxconn. With maxconn 4096 and 1000
# clients (2000 descriptors) it would close server connections after their response and
# open new ones: a global maxconn well above the load keeps it pooling. 9000 still fits the
# open-files limit of 20000.
HAPROXY_MAXCONN = int(os.environ.get("BENCH_HAPROXY_MAXCONN", "9000"))


def start_haproxy(binary, logname, backends, workers, size):
    port = free_port()
    conf = os.path.join(TMP, "haproxy-w%d-c%d.cfg" % (workers, size["conns"]))
    servers = "\n".join("    server %s 127.0.0.1:%d" % (n, p) for n, p in backends)
    tls = size.get("tls")
    tls_global = """    ssl-default-bind-ciphers %s
    ssl-default-bind-options ssl-min-ver TLSv1.2
    tune.ssl.cachesize %d
    tune.ssl.lifetime 300
""" % (TLS12_CIPHERS, max(100000, 4 * size["maxconn"])) if tls else ""
    bind = "127.0.0.1:%d ssl crt %s alpn http/1.1" % (port, tls["pem"]) if tls \
        else "127.0.0.1:%d" % port
    with open(conf, "w") as f:
        f.write("""global
    nbthread %d
    maxconn %d
%sdefaults
    mode http
    option http-keep-alive
    http-reuse %s
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend bench
    bind %s
    option forwardfor
    http-request set-header X-Forwarded-Proto %s
    http-request set-header X-Forwarded-Host %%[req.hdr(host)]
    default_backend be
backend be
    balance roundrobin
%s
""" % (workers, max(size["maxconn"], HAPROXY_MAXCONN), tls_global, size.get(
        "http_reuse", "safe"), bind, "https" if tls else "http", servers))
    # -db: foreground; no "log" line, so nothing is logged (as access_log off elsewhere)
    return spawn([binary, "-f", conf, "-db"], logname), port


def start_nginx(binary, logname, backends, workers, size):
    port = free_port()
    prefix = _nginx_prefix("nginx-proxy-w%d-c%d%s" % (workers, size["conns"],
                                                       "-tls" if size.get("tls") else ""))
    # worker_connections counts client and upstream connections alike. keepalive is twice
    # the connection count: with exactly the count, nginx still opened a new server
    # connection for 3-4% of its requests at 64 and 256 clients (srv conns 8818 in 5 s at 64).
    main, http = _nginx_main(prefix, workers, NOFILE - 100)
    servers = "\n".join("        server 127.0.0.1:%d;" % p for _, p in backends)
    tls = size.get("tls")
    listen = "127.0.0.1:%d" % port
    tls_conf = ""
    if tls:
        listen += " ssl"
        tls_conf = """
        ssl_certificate %s;
        ssl_certificate_key %s;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers %s;
        ssl_prefer_server_ciphers off;
        ssl_session_cache shared:SSL:10m;
        ssl_session_timeout 1d;
        ssl_session_tickets on;""" % (tls["cert"], tls["key"], TLS12_CIPHERS)
    text = main + """http {%s
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    upstream be {
%s
        keepalive %d;
        keepalive_requests 1000000;
        keepalive_timeout 60s;
    }
    server {
        listen %s;%s
        location / {
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
        }
    }
}
""" % (http, servers, 2 * size["pool"], listen, tls_conf)
    return _spawn_nginx(prefix, text, logname), port


# ---------------------------------------------------------------------------------------------
# static files: keel's web role against nginx, the same directory

def start_keel_static(binary, logname, root, workers, size):
    port = free_port()
    conf = os.path.join(TMP, "%s-static-w%d.conf" % (logname, workers))
    # keel keeps an open-file cache of its own (src/http/http_filecache.c) and uses sendfile
    with open(conf, "w") as f:
        f.write("""global { workers %d; log_level warn; timeout_drain 1s; }
frontend web {
    bind 127.0.0.1:%d;
    access_log off;
    maxconn %d;
    location / { root %s; }
}
""" % (workers, port, size["maxconn"], root))
    return spawn([binary, "run", "-c", conf], logname), port


def start_nginx_static(binary, logname, root, workers, size):
    port = free_port()
    prefix = _nginx_prefix("nginx-static-w%d" % workers)
    main, http = _nginx_main(prefix, workers, NOFILE - 100)
    text = main + """http {%s
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=1000 inactive=60s;
    open_file_cache_valid 60s;
    open_file_cache_min_uses 1;
    open_file_cache_errors on;
    server {
        listen 127.0.0.1:%d;
        location / { root %s; }
    }
}
""" % (http, port, root)
    return _spawn_nginx(prefix, text, logname), port


PROXY_STARTERS = {"keel": start_keel, "haproxy": start_haproxy, "nginx": start_nginx}
STATIC_STARTERS = {"keel": start_keel_static, "nginx": start_nginx_static}
