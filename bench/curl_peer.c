/* bench/curl_peer.c: the strongest peer of `make bench` (docs/PERFORMANCE.md, issue 15).
 *
 * What a firmware team would write with libcurl instead of event-notify: one CURL easy handle,
 * made once and reused for every event (libcurl keeps the connection alive), in the firmware's
 * own process, no fork, no shell. The bench compiles it at run time:
 *
 *     gcc -O2 -o target/bench-peer/curl_peer bench/curl_peer.c $(pkg-config --cflags --libs libcurl)
 *
 * Usage: curl_peer BASE_URL PHONE_IP [CA_FILE]
 *   BASE_URL  e.g. http://127.0.0.1:8080/in or https://127.0.0.1:8443/in
 *   CA_FILE   PEM CA trusted for https (CURLOPT_CAINFO), as the daemon's delivery.ca_file
 *
 * stdin: one event per line, tab-separated: CALL_ID EVENT REMOTE DISPLAY_NAME (raw values).
 * For each it sends GET BASE_URL?n=CALL_ID&ev=EVENT&from=REMOTE&name=DISPLAY&ip=PHONE_IP&t=UNIX
 * (the daemon's template in the bench), every value escaped with curl_easy_escape, as a correct
 * firmware does, and writes one line on stdout when the event is done: "ok", or "err WHY"
 * (after a first line "ready" once the handle is made).
 * Exits 0 on EOF.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINE_CAP 4096
#define URL_CAP 8192

/* The response body is not needed: throw it away. */
static size_t discard(char *p, size_t size, size_t n, void *user)
{
    (void)p;
    (void)user;
    return size * n;
}

/* Appends "&key=escaped(value)" (or "?key=..." when first) to url; 0 on success. */
static int add(CURL *h, char *url, size_t *len, const char *sep, const char *key, const char *value)
{
    char *e = curl_easy_escape(h, value, 0);
    if (!e)
        return -1;
    int k = snprintf(url + *len, URL_CAP - *len, "%s%s=%s", sep, key, e);
    curl_free(e);
    if (k < 0 || (size_t)k >= URL_CAP - *len)
        return -1;
    *len += (size_t)k;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s BASE_URL PHONE_IP [CA_FILE]\n", argv[0]);
        return 2;
    }
    const char *base = argv[1], *ip = argv[2], *ca = argc == 4 ? argv[3] : NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "curl_global_init failed\n");
        return 1;
    }
    CURL *h = curl_easy_init();
    if (!h) {
        fprintf(stderr, "curl_easy_init failed\n");
        return 1;
    }
    /* Set once; the handle (and its connection cache) lives as long as the process. */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "firmware-libcurl");
    if (ca)
        curl_easy_setopt(h, CURLOPT_CAINFO, ca);

    /* Ready: the bench starts its clock for the first request only after this line. */
    printf("ready\n");
    fflush(stdout);

    char line[LINE_CAP], url[URL_CAP], ts[32];
    while (fgets(line, sizeof line, stdin)) {
        size_t n = strcspn(line, "\r\n");
        line[n] = '\0';
        char *f[4] = {0};
        char *p = line;
        int nf = 0;
        while (nf < 4) {
            f[nf++] = p;
            p = strchr(p, '\t');
            if (!p)
                break;
            *p++ = '\0';
        }
        if (nf != 4) {
            printf("err bad line: %d fields\n", nf);
            fflush(stdout);
            continue;
        }
        snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
        size_t len = (size_t)snprintf(url, sizeof url, "%s", base);
        if (len >= sizeof url || add(h, url, &len, "?", "n", f[0]) || add(h, url, &len, "&", "ev", f[1]) ||
            add(h, url, &len, "&", "from", f[2]) || add(h, url, &len, "&", "name", f[3]) ||
            add(h, url, &len, "&", "ip", ip) || add(h, url, &len, "&", "t", ts)) {
            printf("err url too long\n");
            fflush(stdout);
            continue;
        }
        curl_easy_setopt(h, CURLOPT_URL, url);
        CURLcode rc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (rc != CURLE_OK)
            printf("err %s\n", curl_easy_strerror(rc));
        else if (status < 200 || status > 299)
            printf("err HTTP %ld\n", status);
        else
            printf("ok\n");
        fflush(stdout);
    }
    curl_easy_cleanup(h);
    curl_global_cleanup();
    return 0;
}
