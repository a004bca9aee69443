/* Writes the libpng test vectors of this folder: a 10 x 9 image for each colour type and bit depth,
 * some with tRNS, some Adam7-interlaced, libpng choosing among all five row filters.
 * Build and run: cc make_vectors.c -lpng -o make_vectors && ./make_vectors .
 * The pixel pattern, palette and tRNS values are the ones PngTestVectors.cs recomputes. */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { W = 10, H = 9 };

static unsigned sample(unsigned x, unsigned y, unsigned c, int depth)
{
    unsigned v = (x * 0x9E37u + y * 0x85EBu + c * 0xC2B2u + x * y * 0x27D4u) >> 3;
    return v & ((1u << depth) - 1u);
}

static int palette_count(int depth) { return depth == 1 ? 2 : depth == 2 ? 3 : depth == 4 ? 11 : 200; }

static void write_png(const char *dir, const char *name, int colour_type, int depth, int with_trns, int interlace)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) { fprintf(stderr, "libpng failed on %s\n", name); exit(1); }
    png_init_io(png, f);
    png_set_IHDR(png, info, W, H, depth, colour_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_ALL_FILTERS);
    int channels = colour_type == 0 ? 1 : colour_type == 2 ? 3 : colour_type == 3 ? 1 : colour_type == 4 ? 2 : 4;
    if (colour_type == 3) {
        png_color palette[256];
        int n = palette_count(depth);
        for (int i = 0; i < n; i++) {
            palette[i].red = (png_byte)(i * 37 + 11);
            palette[i].green = (png_byte)(i * 91 + 3);
            palette[i].blue = (png_byte)(i * 53 + 200);
        }
        png_set_PLTE(png, info, palette, n);
        if (with_trns) {
            png_byte alpha[256];
            int nt = n / 2 > 0 ? n / 2 : 1;
            for (int i = 0; i < nt; i++) alpha[i] = (png_byte)(i * 71 + 5);
            png_set_tRNS(png, info, alpha, nt, NULL);
        }
    } else if (with_trns) {
        png_color_16 colour;
        memset(&colour, 0, sizeof colour);
        colour.gray = (png_uint_16)sample(0, 0, 0, depth);
        colour.red = (png_uint_16)sample(0, 0, 0, depth);
        colour.green = (png_uint_16)sample(0, 0, 1, depth);
        colour.blue = (png_uint_16)sample(0, 0, 2, depth);
        png_set_tRNS(png, info, NULL, 0, &colour);
    }
    png_write_info(png, info);

    /* Rows packed by hand: high bits first below 8 bits, big-endian at 16. */
    int row_bytes = (W * channels * depth + 7) / 8;
    png_bytep rows[H];
    for (int y = 0; y < H; y++) {
        rows[y] = calloc(row_bytes, 1);
        for (int x = 0; x < W; x++)
            for (int c = 0; c < channels; c++) {
                unsigned v = colour_type == 3 ? sample(x, y, 0, depth) % palette_count(depth) : sample(x, y, c, depth);
                int index = x * channels + c;
                if (depth == 16) { rows[y][2 * index] = v >> 8; rows[y][2 * index + 1] = v & 255; }
                else if (depth == 8) rows[y][index] = v;
                else { int bit = index * depth; rows[y][bit / 8] |= v << (8 - depth - bit % 8); }
            }
    }
    png_write_image(png, rows);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    fclose(f);
    for (int y = 0; y < H; y++) free(rows[y]);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    static const struct { const char *name; int type, depth, trns, interlace; } vectors[] = {
        { "g1.png", 0, 1, 0, 0 }, { "g2.png", 0, 2, 0, 0 }, { "g4.png", 0, 4, 0, 0 },
        { "g8.png", 0, 8, 0, 0 }, { "g16.png", 0, 16, 0, 0 }, { "g8t.png", 0, 8, 1, 0 },
        { "rgb8.png", 2, 8, 0, 0 }, { "rgb16.png", 2, 16, 0, 0 }, { "rgb16t.png", 2, 16, 1, 0 },
        { "p1.png", 3, 1, 0, 0 }, { "p2t.png", 3, 2, 1, 0 }, { "p4.png", 3, 4, 0, 0 }, { "p8t.png", 3, 8, 1, 0 },
        { "ga8.png", 4, 8, 0, 0 }, { "ga16.png", 4, 16, 0, 0 },
        { "rgba8.png", 6, 8, 0, 0 }, { "rgba16.png", 6, 16, 0, 0 },
        { "g1i.png", 0, 1, 0, 1 }, { "g16i.png", 0, 16, 0, 1 }, { "rgb8ti.png", 2, 8, 1, 1 },
        { "p4ti.png", 3, 4, 1, 1 }, { "ga8i.png", 4, 8, 0, 1 }, { "rgba16i.png", 6, 16, 0, 1 },
    };
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++)
        write_png(dir, vectors[i].name, vectors[i].type, vectors[i].depth, vectors[i].trns, vectors[i].interlace);
    return 0;
}
