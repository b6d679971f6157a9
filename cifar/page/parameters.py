"""What each parameter of the API means, in one table: an endpoint's docstring says what it answers, this says what it
takes. Both reach an MCP client (the assistant reads them as the tool's description and its parameters' descriptions:
`Endpoint.description`) and docs/api.md. A parameter's type and allowed values come from its control on the page
(Gradio's schema: a dropdown's choices, a slider's number); tests/test_endpoints.py checks every one is described.
"""

PICTURE = ("The picture: a photo or drawing of one of the ten CIFAR-10 classes (PNG, JPEG, GIF, WebP, BMP or TIFF; "
           "centre-cropped to a square, seen by the model at 32x32 pixels). Over MCP: an http(s) URL or a data: URL.")

PARAMETERS = {
    "image": PICTURE,
    "files": "Up to a few hundred pictures, or ZIP files of pictures; each file that cannot be read is named with the "
             "reason and the others are answered.",
    "model": "Which served model answers (its name); left out, the page's default model.",
    "top_k": "How many of the most probable classes to list (1 to 10).",
    "calibrated": "True: probabilities calibrated by the run's temperature (what the model's confidence is worth); "
                  "False: the raw softmax.",
    "layer": "Where in the network to explain: layer1 (fine detail) to layer4 (the last stage, coarse and "
             "class-specific), or layer4.1.conv2 (the last convolution).",
    "target": "The class the heatmap explains: 'predicted class', or one of the ten classes by name.",
    "method": "The CAM method that draws the heatmap, e.g. 'Grad-CAM' (fast, the default) or 'Score-CAM' (slower, "
              "the most faithful at layer4 on both bundled models).",
    "opacity": "How strongly the heatmap is blended onto the picture, 0 (picture only) to 1 (heatmap only).",
    "covering": "What to cover: the top 10/20/40% of the heatmap, everything but its top 20/40%, or what is painted.",
    "painted": "With covering 'what I painted': a mask picture, the painted (non-black) pixels covered.",
    "other": "The class to contrast the prediction with: 'runner-up' (the second most probable), or a class by name.",
    "corruption": "A CIFAR-10-C corruption to apply at severities 1 to 5, e.g. 'gaussian_noise', 'fog', 'contrast'.",
    "count": "How many images to show at most.",
    "true_class": "Only images of this true class; 'all' or 'any': every class.",
    "predicted_class": "Only images the model took for this class; 'all' or 'any': every class.",
    "with_gradcam": "Also show each mistake's Grad-CAM heatmap (layer4) for the predicted class and its ROAD score.",
    "correctness": "'right', 'wrong' or 'all' images.",
    "min_confidence": "Only images whose (calibrated) confidence is at least this, 0 to 1.",
    "max_confidence": "Only images whose (calibrated) confidence is at most this, 0 to 1.",
    "side": "Whose heatmap: 'predicted' (what the model saw of its answer) or 'true' (what it saw of the truth).",
    "colour_by": "What the map's colours show: 'true class', 'predicted class', 'right or wrong', 'calibrated "
                 "confidence', or 'where the models disagree' (with two models).",
    "sort": "The order of the answers: 'file order', 'most confident first' or 'least confident first'.",
    "x_min": "The area of the test-set map to show: its left edge, in the map's coordinates.",
    "x_max": "The area's right edge, in the map's coordinates.",
    "y_min": "The area's bottom edge, in the map's coordinates.",
    "y_max": "The area's top edge, in the map's coordinates.",
}


def described(docstring: str, names: list) -> str:
    """An endpoint's docstring with an Args section (Google style, what Gradio's MCP server reads) for `names`."""
    lines = [" ".join(docstring.split()), "", "Args:"]
    lines += [f"    {name}: {PARAMETERS[name]}" for name in names]
    return "\n".join(lines)
