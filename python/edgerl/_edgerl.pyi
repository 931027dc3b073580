"""Type stubs of the extension module (python/src/); use the `edgerl` package's wrappers."""

from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

# An image: a file's path, or (width, height, channels (3: RGB, 4: RGBA), interleaved bytes).
_ImageArg = Union[str, Tuple[int, int, int, bytes]]

__version__: str

class EdgerlError(RuntimeError): ...
class InvalidInputError(EdgerlError, ValueError): ...

def device_info() -> str: ...
def demo_screens(seed: int, n: int, elements: int = 3) -> str: ...
def _sft(
    config_toml: Optional[str] = None,
    config_json: Optional[str] = None,
    config_path: Optional[str] = None,
    rows_path: Optional[str] = None,
    start: str = "fresh",
) -> str: ...
def _evaluate(
    config_toml: Optional[str] = None,
    config_json: Optional[str] = None,
    config_path: Optional[str] = None,
    rows_path: Optional[str] = None,
    adapter: Optional[str] = None,
    samples: int = 1,
    temperature: float = 0.0,
    batch_size: Optional[int] = None,
    output: Optional[str] = None,
) -> str: ...

class Model:
    path: str
    has_vision: bool
    def __init__(self, path: str, adapter: Optional[str] = None, dtype: Optional[str] = None) -> None: ...
    def _generate(
        self,
        prompt: Optional[str] = None,
        chat: Optional[str] = None,
        messages: Optional[Sequence[Tuple[str, str]]] = None,
        parts_json: Optional[str] = None,
        images: Optional[Sequence[_ImageArg]] = None,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        min_p: float = 0.0,
        seed: int = 0,
    ) -> Tuple[List[int], str]: ...
    def _score(self, text: str, images: Optional[Sequence[_ImageArg]] = None) -> Tuple[List[int], List[float]]: ...
    def encode(self, text: str, add_special_tokens: bool = True) -> List[int]: ...
    def decode(self, ids: Sequence[int]) -> str: ...

class CancelFlag:
    def set(self) -> None: ...
    def is_set(self) -> bool: ...

class Trainer:
    global_step: int
    _cursor: int
    max_steps: int
    output_dir: Optional[str]
    num_iterations: int
    num_generations: int
    has_vision: bool
    memory_plan: Optional[str]
    def __init__(
        self,
        config_toml: Optional[str] = None,
        config_json: Optional[str] = None,
        config_path: Optional[str] = None,
        rows_json: Optional[List[str]] = None,
        reward_cb: Optional[Callable[[List[int], List[str], List[List[int]]], Tuple[List[float], List[List[float]]]]] = None,
        reward_names: List[str] = ...,
        memory_budget: Optional[str] = None,
    ) -> None: ...
    def _step(self) -> str: ...
    def _cancel_flag(self) -> CancelFlag: ...
    def _generate(
        self,
        prompt: Optional[str] = None,
        chat: Optional[str] = None,
        messages: Optional[Sequence[Tuple[str, str]]] = None,
        parts_json: Optional[str] = None,
        images: Optional[Sequence[_ImageArg]] = None,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        min_p: float = 0.0,
        seed: int = 0,
    ) -> Tuple[List[int], str]: ...
    def _score(self, text: str, images: Optional[Sequence[_ImageArg]] = None) -> Tuple[List[int], List[float]]: ...
    save_steps: int
    def save_adapter(self, dir: str) -> str: ...
    def _checkpoint(self) -> str: ...
    def _resume(self) -> int: ...
    def _previous_run(self) -> Optional[str]: ...
    def _remove_previous_run(self) -> None: ...
    def _rows(self) -> List[str]: ...
    def _own_keys(self) -> str: ...
    def _last_completions(self) -> List[str]: ...
