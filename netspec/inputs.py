"""What a network reads, as a spec says it: an image (its size, colour, resize and crop, scale, mean and std) or
a vector of numbers (its size, and the mean and std that standardise it)."""

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator
from pydantic_core import PydanticCustomError

from netspec.errors import Problem, plural
from netspec.fields import Count, SpecModel, rule_error


def _one_or_each_form(value: Any) -> str:
    """Which of a number (one) or a list (each) a value is: the tags of Crop and of `_one_or_each`."""
    return "each" if isinstance(value, list) else "one"


Crop = Annotated[
    Annotated[Count, Tag("one")] | Annotated[list[Count], Field(min_length=2, max_length=2), Tag("each")],
    Discriminator(
        _one_or_each_form,
        custom_error_type="NS103",
        custom_error_message="must be a whole number (a square) or [height, width]",
    ),
]


class ImageInput(SpecModel):
    """An image, read as (channels, height, width): resized to width × height, or resized and cropped."""

    width: Count
    """Width in pixels the network reads; other images are resized to it (with crop given: the crop's width)."""
    height: Count
    """Height in pixels the network reads; other images are resized to it (with crop given: the crop's height)."""
    color: Literal["rgb", "grayscale"] = "rgb"
    """rgb gives 3 channels (red, green, blue), grayscale gives 1."""
    resize: Count | None = None
    """Resize the shorter side to this many pixels, keeping the aspect ratio (torchvision's Resize(n)); needs crop."""
    interpolation: Literal["bilinear", "bicubic"] = "bilinear"
    """The filter that resizes: bilinear (torchvision's Resize default) or bicubic (how EfficientNet was evaluated)."""
    crop: Crop | None = None
    """Then cut the middle: n for n × n, or [height, width] (torchvision's CenterCrop); black pads a smaller image."""
    scale: list[float] = Field(default=[0.0, 1.0], min_length=2, max_length=2)
    """[lo, hi]: pixel values 0..255 are mapped linearly onto lo..hi."""
    mean: list[float] | None = None
    """Per-channel mean subtracted after scaling (one value per channel)."""
    std: list[Annotated[float, Field(gt=0)]] | None = None
    """Per-channel standard deviation divided by after subtracting the mean."""

    @property
    def channels(self) -> int:
        return 3 if self.color == "rgb" else 1

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    @property
    def crop_size(self) -> tuple[int, int] | None:
        """The crop as (height, width), or None."""
        if self.crop is None:
            return None
        return (self.crop, self.crop) if isinstance(self.crop, int) else (self.crop[0], self.crop[1])

    @model_validator(mode="after")
    def _per_channel(self) -> "ImageInput":
        problems = list(self._crop_problems())
        if self.scale[0] == self.scale[1]:
            lo = f"{self.scale[0]:g}"
            problems.append(Problem("NS104", f"needs two different values [lo, hi], got [{lo}, {lo}]", ("scale",)))
        for key in ("mean", "std"):
            values = getattr(self, key)
            if values is not None and len(values) != self.channels:
                got, channels = plural(len(values), "value"), plural(self.channels, "channel")
                message = f"has {got} but {self.color} images have {channels}; give one value per channel"
                problems.append(Problem("NS108", message, (key,)))
        low, high = sorted(self.scale)
        for index, value in enumerate(self.mean or []):
            # A mean of pixel values (Caffe's 123.68) on a scale of [0, 1] is a mistake no image could make.
            if not low <= value <= high:
                message = (
                    f"is {value:g}, outside the scale [{self.scale[0]:g}, {self.scale[1]:g}] pixels are mapped onto "
                    "before it is subtracted; give the mean of the scaled values (ImageNet's red: 0.485 on "
                    "[0, 1]), or scale: [0, 255] for a mean of pixel values"
                )
                problems.append(Problem("NS104", message, ("mean", index)))
        if problems:
            raise rule_error(problems)
        return self

    def _crop_problems(self):
        if self.resize is not None and self.crop is None:
            message = (
                f"resizes the shorter side to {self.resize} keeping each image's aspect ratio, so images would "
                "come out in many sizes; add crop: N (or [height, width]) to cut the network's input from the "
                "middle, as torchvision's Resize then CenterCrop do"
            )
            yield Problem("NS102", message, ("resize",))
        if self.crop_size is None:
            return
        crop_height, crop_width = self.crop_size
        written = f"{self.crop}" if isinstance(self.crop, int) else f"[{crop_height}, {crop_width}]"
        for key, value, wanted in (("width", self.width, crop_width), ("height", self.height, crop_height)):
            if value != wanted:
                message = (
                    f"is {value}, but crop: {written} makes the network's input {crop_width} wide and "
                    f"{crop_height} high; the network reads the cropped image: write {key}: {wanted}, or change crop"
                )
                yield Problem("NS104", message, (key,))


def _one_or_each(number: Any) -> Any:
    """A number for every feature, or a list of one number per feature (checked by the model)."""
    return Annotated[
        Annotated[number, Tag("one")] | Annotated[list[number], Tag("each")],
        Discriminator(
            _one_or_each_form,
            custom_error_type="NS103",
            custom_error_message="must be a number or a list of numbers",
        ),
    ]


class FeatureInput(SpecModel):
    """A vector of numbers, each standardised as (value - mean) / std before the first layer."""

    size: Count
    """How many numbers the vector has."""
    mean: _one_or_each(float) | None = None
    """Subtracted from each feature: one value per feature, or one number for all."""
    std: _one_or_each(Annotated[float, Field(gt=0)]) | None = None
    """Divides each feature after the mean is subtracted: one value per feature, or one number for all."""

    @model_validator(mode="after")
    def _per_feature(self) -> "FeatureInput":
        problems = []
        for key in ("mean", "std"):
            values = getattr(self, key)
            if isinstance(values, list) and len(values) != self.size:
                got, size = plural(len(values), "value"), plural(self.size, "feature")
                message = f"has {got} but the input has {size}; give one value per feature, or one number for all"
                problems.append(Problem("NS108", message, (key,)))
        if problems:
            raise rule_error(problems)
        return self


def _features_form(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "size"
    if isinstance(value, (dict, FeatureInput)):
        return "mapping"
    return None


Features = Annotated[
    Annotated[Count, Tag("size")] | Annotated[FeatureInput, Tag("mapping")],
    Discriminator(
        _features_form,
        custom_error_type="NS103",
        custom_error_message="must be a whole number (how many features) or a mapping with size, mean and std",
    ),
]


class Input(SpecModel):
    """What the network reads: an image, or a vector of numbers."""

    image: ImageInput | None = None
    """An image input."""
    features: Features | None = None
    """A plain vector of numbers: its length, or a mapping {size, mean, std}."""

    @model_validator(mode="after")
    def _exactly_one(self) -> "Input":
        if (self.image is None) == (self.features is None):
            # A key written with no value (`features:` alone) is there but empty: said at the key.
            empty = {
                "image": "must be a mapping of keys to values (width, height, ...), got null",
                "features": "must be a whole number, got null",
            }
            written = [key for key in empty if key in self.model_fields_set and getattr(self, key) is None]
            if written:
                raise rule_error([Problem("NS103", empty[key], (key,)) for key in written])
            raise PydanticCustomError("NS102", "input takes exactly one of 'image' or 'features'")
        return self

    @property
    def shape(self) -> tuple[int, ...]:
        if self.image:
            return self.image.shape
        return (self.features.size if isinstance(self.features, FeatureInput) else self.features,)

    @property
    def standardised(self) -> FeatureInput | None:
        """The features' mean and std, if a vector input has either (images apply theirs when read)."""
        features = self.features
        if isinstance(features, FeatureInput) and (features.mean is not None or features.std is not None):
            return features
        return None
