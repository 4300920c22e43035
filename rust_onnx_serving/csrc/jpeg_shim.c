/*
 * JPEG decoding through libjpeg-turbo's libjpeg API, driven the way Pillow's JpegDecode.c drives it, so that the
 * pixels (and the accept/reject decision) are Pillow's:
 *
 * - the whole file is the input; running out of data is a suspension (Pillow's source manager returns FALSE from
 *   fill_input_buffer), which with nothing more to come means "truncated" -- an error, as in Pillow;
 * - libjpeg warnings (corrupt entropy data, extraneous bytes) are ignored, errors abort;
 * - jpeg_read_header(cinfo, FALSE) repeated while it finds tables only; default decoder settings (JDCT_ISLOW,
 *   fancy upsampling); the output colour space is chosen from the number of components as Pillow's mode is:
 *   1 -> grayscale ("L"), 3 -> RGB, 4 -> CMYK (the caller applies Pillow's "CMYK;I" inversion and cmyk2rgb);
 * - the result of jpeg_finish_decompress is ignored once every scanline is read (a missing EOI is fine).
 */
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "jpeglib.h"
#include "jerror.h"

#define MS_OK 0
#define MS_TRUNCATED 1
#define MS_ERROR 2
#define MS_BAD_PRECISION 3
#define MS_BAD_COMPONENTS 4
#define MS_BAD_OUTPUT 5

#define MS_MESSAGE_LENGTH JMSG_LENGTH_MAX

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char *message;
} ms_error_mgr;

static void ms_error_exit(j_common_ptr cinfo) {
    ms_error_mgr *error = (ms_error_mgr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, error->message);
    longjmp(error->jump, 1);
}

static void ms_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void ms_init_source(j_decompress_ptr cinfo) { (void)cinfo; }

static boolean ms_fill_input_buffer(j_decompress_ptr cinfo) {
    (void)cinfo;
    return FALSE; /* suspend: there is no more data */
}

static void ms_skip_input_data(j_decompress_ptr cinfo, long num_bytes) {
    struct jpeg_source_mgr *src = cinfo->src;
    if (num_bytes <= 0) {
        return;
    }
    if ((size_t)num_bytes > src->bytes_in_buffer) {
        /* Skipping past the end: the next read suspends. */
        src->next_input_byte += src->bytes_in_buffer;
        src->bytes_in_buffer = 0;
    } else {
        src->next_input_byte += (size_t)num_bytes;
        src->bytes_in_buffer -= (size_t)num_bytes;
    }
}

static void ms_term_source(j_decompress_ptr cinfo) { (void)cinfo; }

static void ms_set_source(j_decompress_ptr cinfo, struct jpeg_source_mgr *src, const unsigned char *data,
                          size_t length) {
    src->init_source = ms_init_source;
    src->fill_input_buffer = ms_fill_input_buffer;
    src->skip_input_data = ms_skip_input_data;
    src->resync_to_restart = jpeg_resync_to_restart;
    src->term_source = ms_term_source;
    src->next_input_byte = data;
    src->bytes_in_buffer = length;
    cinfo->src = src;
}

static int ms_read_header(j_decompress_ptr cinfo) {
    int status;
    do {
        status = jpeg_read_header(cinfo, FALSE);
    } while (status == JPEG_HEADER_TABLES_ONLY);
    return status == JPEG_SUSPENDED ? MS_TRUNCATED : MS_OK;
}

static int ms_check_header(j_decompress_ptr cinfo, char *message) {
    if (cinfo->data_precision != 8) {
        snprintf(message, MS_MESSAGE_LENGTH, "cannot handle %d-bit layers", cinfo->data_precision);
        return MS_BAD_PRECISION;
    }
    if (cinfo->num_components != 1 && cinfo->num_components != 3 && cinfo->num_components != 4) {
        snprintf(message, MS_MESSAGE_LENGTH, "cannot handle %d-layer images", cinfo->num_components);
        return MS_BAD_COMPONENTS;
    }
    return MS_OK;
}

/* The header read, then checked: MS_OK, MS_TRUNCATED, or ms_check_header's refusal. */
static int ms_read_checked_header(j_decompress_ptr cinfo, char *message) {
    int status = ms_read_header(cinfo);
    return status == MS_OK ? ms_check_header(cinfo, message) : status;
}

typedef int (*ms_step)(j_decompress_ptr cinfo, void *context, char *message);

/*
 * `step` on a decompressor reading `data`, and its status; libjpeg's errors jump back here (the frame of the setjmp
 * must outlive the step) and answer MS_ERROR with libjpeg's message.
 */
static int ms_run(const unsigned char *data, size_t length, char *message, ms_step step, void *context) {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_source_mgr src;
    ms_error_mgr error;
    int status;

    message[0] = '\0';
    memset(&cinfo, 0, sizeof(cinfo));
    cinfo.err = jpeg_std_error(&error.pub);
    error.pub.error_exit = ms_error_exit;
    error.pub.output_message = ms_output_message;
    error.message = message;
    if (setjmp(error.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return MS_ERROR;
    }
    jpeg_create_decompress(&cinfo);
    ms_set_source(&cinfo, &src, data, length);
    status = step(&cinfo, context, message);
    jpeg_destroy_decompress(&cinfo);
    return status;
}

typedef struct {
    unsigned int *width;
    unsigned int *height;
    int *components;
} ms_info;

static int ms_info_step(j_decompress_ptr cinfo, void *context, char *message) {
    ms_info *info = context;
    int status = ms_read_checked_header(cinfo, message);
    if (status == MS_OK) {
        *info->width = cinfo->image_width;
        *info->height = cinfo->image_height;
        *info->components = cinfo->num_components;
    }
    return status;
}

/* The frame header: size, components (1, 3 or 4) and precision. */
int ms_jpeg_info(const unsigned char *data, size_t length, unsigned int *width, unsigned int *height,
                 int *components, char *message) {
    ms_info info = {width, height, components};
    return ms_run(data, length, message, ms_info_step, &info);
}

typedef struct {
    unsigned char *out;
    size_t out_length;
} ms_output;

static int ms_decode_step(j_decompress_ptr cinfo, void *context, char *message) {
    ms_output *output = context;
    size_t row_bytes;
    int status = ms_read_checked_header(cinfo, message);
    if (status != MS_OK) {
        return status;
    }
    switch (cinfo->num_components) {
        case 1:
            cinfo->out_color_space = JCS_GRAYSCALE;
            break;
        case 3:
            cinfo->out_color_space = JCS_RGB;
            break;
        default:
            cinfo->out_color_space = JCS_CMYK;
            break;
    }
    if (!jpeg_start_decompress(cinfo)) {
        return MS_TRUNCATED;
    }
    row_bytes = (size_t)cinfo->output_width * (size_t)cinfo->output_components;
    if (row_bytes * (size_t)cinfo->output_height != output->out_length) {
        snprintf(message, MS_MESSAGE_LENGTH, "unexpected output size %ux%ux%d", cinfo->output_width,
                 cinfo->output_height, cinfo->output_components);
        return MS_BAD_OUTPUT;
    }
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = output->out + (size_t)cinfo->output_scanline * row_bytes;
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
            return MS_TRUNCATED;
        }
    }
    (void)jpeg_finish_decompress(cinfo);
    return MS_OK;
}

/* Decode into `out` (width * height * components bytes, components as ms_jpeg_info reported). */
int ms_jpeg_decode(const unsigned char *data, size_t length, unsigned char *out, size_t out_length,
                   char *message) {
    ms_output output = {out, out_length};
    return ms_run(data, length, message, ms_decode_step, &output);
}

/*
 * Left out of the program: libjpeg-turbo 3's 12- and 16-bit decoders and its colour quantizers.
 *
 * jdmaster.c names them whatever the image, so a static link takes them all (151 KB of the binary), though none can
 * run here: ms_check_header refuses any precision but 8 before jpeg_start_decompress (as Pillow does), and
 * quantize_colors is never set. Defined here, in the object that calls libjpeg and so is linked before any part of
 * it, their entry points keep the linker from taking libjpeg-turbo's own; one that is ever reached fails the decode
 * as libjpeg fails a feature it was built without. A libjpeg-turbo that adds an entry point to one of those parts
 * fails the link (defined twice); it cannot change the pixels.
 */
static void ms_refuse_precision(j_decompress_ptr cinfo) {
    cinfo->err->msg_code = JERR_BAD_PRECISION;
    cinfo->err->msg_parm.i[0] = cinfo->data_precision;
    (*cinfo->err->error_exit)((j_common_ptr)cinfo);
}

static void ms_refuse_feature(j_decompress_ptr cinfo) {
    cinfo->err->msg_code = JERR_NOT_COMPILED;
    (*cinfo->err->error_exit)((j_common_ptr)cinfo);
}

#define MS_LEFT_OUT(name, refusal) \
    void name(j_decompress_ptr cinfo);  \
    void name(j_decompress_ptr cinfo) { refusal(cinfo); }

MS_LEFT_OUT(j12init_1pass_quantizer, ms_refuse_precision)
MS_LEFT_OUT(j12init_2pass_quantizer, ms_refuse_precision)
MS_LEFT_OUT(j12init_color_deconverter, ms_refuse_precision)
MS_LEFT_OUT(j12init_d_coef_controller, ms_refuse_precision)
MS_LEFT_OUT(j12init_d_diff_controller, ms_refuse_precision)
MS_LEFT_OUT(j12init_d_main_controller, ms_refuse_precision)
MS_LEFT_OUT(j12init_d_post_controller, ms_refuse_precision)
MS_LEFT_OUT(j12init_inverse_dct, ms_refuse_precision)
MS_LEFT_OUT(j12init_lossless_decompressor, ms_refuse_precision)
MS_LEFT_OUT(j12init_merged_upsampler, ms_refuse_precision)
MS_LEFT_OUT(j12init_upsampler, ms_refuse_precision)
MS_LEFT_OUT(j16init_color_deconverter, ms_refuse_precision)
MS_LEFT_OUT(j16init_d_diff_controller, ms_refuse_precision)
MS_LEFT_OUT(j16init_d_main_controller, ms_refuse_precision)
MS_LEFT_OUT(j16init_d_post_controller, ms_refuse_precision)
MS_LEFT_OUT(j16init_lossless_decompressor, ms_refuse_precision)
MS_LEFT_OUT(j16init_upsampler, ms_refuse_precision)
MS_LEFT_OUT(jinit_1pass_quantizer, ms_refuse_feature)
MS_LEFT_OUT(jinit_2pass_quantizer, ms_refuse_feature)

/*
 * For the tests of the parts left out (src/decoding/jpeg.rs): jpeg_start_decompress on `data` as libjpeg alone would
 * run it, without ms_check_header, quantizing colours if asked. MS_OK if it starts; MS_ERROR and libjpeg's message
 * if it refuses. Not called by the service (the linker drops it from the binary).
 */
static int ms_start_step(j_decompress_ptr cinfo, void *context, char *message) {
    (void)message;
    if (ms_read_header(cinfo) != MS_OK) {
        return MS_TRUNCATED;
    }
    cinfo->quantize_colors = *(const int *)context ? TRUE : FALSE;
    (void)jpeg_start_decompress(cinfo);
    return MS_OK;
}

int ms_jpeg_start_unchecked(const unsigned char *data, size_t length, int quantize_colors, char *message) {
    return ms_run(data, length, message, ms_start_step, &quantize_colors);
}
