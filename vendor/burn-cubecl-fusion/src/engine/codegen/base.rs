use cubecl::{define_scalar, define_size};

define_scalar!(pub DynElem);
define_size!(pub DynSize);
