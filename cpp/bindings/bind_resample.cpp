// Resize binding: an (h, w) uint8 image in, a new (out_h, out_w) uint8 image
// out; the work runs without the GIL so threads resize images in parallel.
#include "arrays.hpp"
#include "icas/resample.hpp"
#include "register.hpp"

namespace icas::bind {

namespace {

carray<uint8_t> lanczos(const carray<uint8_t>& image, int64_t out_h, int64_t out_w,
                        bool pillow13_order) {
    require_ndim(image, 2, "image");
    const int64_t h = image.shape(0), w = image.shape(1);
    resize_lanczos_check(h, w, out_h, out_w);
    auto out = empty<uint8_t>({out_h, out_w});
    const uint8_t* src = image.data();
    uint8_t* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        resize_lanczos(src, h, w, dst, out_h, out_w, pillow13_order);
    }
    return out;
}

}  // namespace

void register_resample(py::module_& m) {
    m.def("resize_lanczos", &lanczos, py::arg("image").noconvert(), py::arg("out_h"),
          py::arg("out_w"), py::arg("pillow13_order") = true,
          "Pillow's LANCZOS resize of an (h, w) uint8 image to (out_h, out_w) uint8, bit for bit; "
          "pillow13_order=False gives the order of passes of Pillow 10 to 12.");
}

}  // namespace icas::bind
