/* Placeholder translation unit for a module that has no sources yet (CMake needs one). */
typedef int sx_empty_translation_unit;
