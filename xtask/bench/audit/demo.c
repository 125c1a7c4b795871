/* demo: a small Stable ABI extension module, compiled three ways by build.sh
 * to show what separates the abi3 layout from abi3t in the binary.
 *
 *   a) abi3-cp38:   -DPy_LIMITED_API=0x03080000, GIL headers
 *   b) abi3-cp315:  -DPy_LIMITED_API=0x030f0000, GIL headers
 *   c) abi3t-cp315: -DPy_TARGET_ABI3T=0x030f0000 -DPy_LIMITED_API=0x030f0000,
 *                   free-threaded headers (or GIL headers: same object)
 *
 * Optional: -DDEMO_MODEXPORT with (b) builds the abi3 layout but still uses
 * the PEP 793 export hook, to test whether the init export alone tells the
 * two layouts apart.
 *
 * The module:
 *   demo.describe(obj) -> (type(obj), len if obj is a tuple else -1, obj)
 *   demo.Counter()     -> heap type (PyType_FromSpec) with one method,
 *                         Counter.bump() -> the incremented count
 *
 * `#ifdef _Py_OPAQUE_PYOBJECT` appears only where abi3t needs other code:
 *   - the instance layout: PyObject is opaque, so no PyObject_HEAD; the type
 *     asks for its own data with a negative basicsize (3.12+) and reaches it
 *     with PyObject_GetTypeData;
 *   - module creation: PyModuleDef is opaque, so the module is defined by a
 *     PySlot array returned from PyModExport_demo (PEP 793, 3.15+).
 * _Py_OPAQUE_PYOBJECT is set by pyabi.h from Py_TARGET_ABI3T (or from
 * Py_LIMITED_API on a free-threaded build); it is private, we only test it.
 */
#include "Python.h"

/* ---- Counter: a heap type with one method ---------------------------- */

typedef struct {
    Py_ssize_t count;
} CounterData;

#ifdef _Py_OPAQUE_PYOBJECT
/* abi3t: the object header's size is unknown; CPython places our data. */
#  define COUNTER_BASICSIZE (-(int)sizeof(CounterData))
static CounterData *
counter_data(PyObject *self)
{
    return (CounterData *)PyObject_GetTypeData(self, Py_TYPE(self));
}
#else
/* abi3 layout: the instance struct embeds the (GIL-build) object header. */
typedef struct {
    PyObject_HEAD
    CounterData data;
} CounterObject;
#  define COUNTER_BASICSIZE ((int)sizeof(CounterObject))
static CounterData *
counter_data(PyObject *self)
{
    return &((CounterObject *)self)->data;
}
#endif

static PyObject *
counter_bump(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    CounterData *data = counter_data(self);
    if (data == NULL) {
        return NULL;
    }
    data->count++;
    return PyLong_FromSsize_t(data->count);
}

static PyMethodDef counter_methods[] = {
    {"bump", counter_bump, METH_NOARGS, "bump() -> the incremented count"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot counter_slots[] = {
    {Py_tp_doc, (void *)"A counter."},
    {Py_tp_methods, counter_methods},
    {0, NULL},
};

static PyType_Spec counter_spec = {
    "demo.Counter",
    COUNTER_BASICSIZE,
    0,
    Py_TPFLAGS_DEFAULT,
    counter_slots,
};

/* ---- module functions --------------------------------------------------- */

/* describe(obj) -> (type(obj), len(obj) if tuple else -1, obj) */
static PyObject *
demo_describe(PyObject *Py_UNUSED(module), PyObject *obj)
{
    PyObject *result = NULL, *size = NULL;
    Py_ssize_t n = -1;

    Py_INCREF(obj);                 /* hold obj while we work on it */
    PyTypeObject *tp = Py_TYPE(obj);
    if (PyTuple_Check(obj)) {
        n = Py_SIZE(obj);
    }
    size = PyLong_FromSsize_t(n);
    if (size == NULL) {
        goto done;
    }
    result = PyTuple_New(3);
    if (result == NULL) {
        goto done;
    }
    Py_INCREF((PyObject *)tp);
    PyTuple_SetItem(result, 0, (PyObject *)tp);    /* steals */
    PyTuple_SetItem(result, 1, size);              /* steals */
    size = NULL;
    Py_INCREF(obj);
    PyTuple_SetItem(result, 2, obj);               /* steals */
done:
    Py_XDECREF(size);
    Py_DECREF(obj);
    return result;
}

static PyMethodDef demo_methods[] = {
    {"describe", demo_describe, METH_O,
     "describe(obj) -> (type(obj), len(obj) if tuple else -1, obj)"},
    {NULL, NULL, 0, NULL},
};

static int
demo_exec(PyObject *module)
{
    PyObject *counter = PyType_FromSpec(&counter_spec);
    if (counter == NULL) {
        return -1;
    }
    if (PyModule_AddObject(module, "Counter", counter) < 0) {  /* steals on success */
        Py_DECREF(counter);
        return -1;
    }
    return 0;
}

/* ---- module definition -------------------------------------------------- */

#if defined(_Py_OPAQUE_PYOBJECT) || defined(DEMO_MODEXPORT)
/* abi3t: PyModuleDef (a PyObject) is opaque; export a slot array (PEP 793). */
PyABIInfo_VAR(demo_abi_info);

static PySlot demo_slots[] = {
    PySlot_STATIC_DATA(Py_mod_name, "demo"),
    PySlot_DATA(Py_mod_abi, &demo_abi_info),
    PySlot_STATIC_DATA(Py_mod_methods, demo_methods),
    PySlot_FUNC(Py_mod_exec, demo_exec),
    PySlot_DATA(Py_mod_gil, Py_MOD_GIL_NOT_USED),
    PySlot_END,
};

PyMODEXPORT_FUNC
PyModExport_demo(void)
{
    return demo_slots;
}

#else
/* abi3 layout: a static PyModuleDef (it starts with PyObject_HEAD_INIT),
 * multi-phase init through PyModuleDef_Init. */
#  if Py_LIMITED_API+0 >= 0x030f0000
PyABIInfo_VAR(demo_abi_info);
#  endif

static PyModuleDef_Slot demo_def_slots[] = {
    {Py_mod_exec, (void *)demo_exec},
#  if Py_LIMITED_API+0 >= 0x030f0000
    {Py_mod_abi, &demo_abi_info},
#  endif
#  if Py_LIMITED_API+0 >= 0x030d0000
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#  endif
    {0, NULL},
};

static PyModuleDef demo_def = {
    PyModuleDef_HEAD_INIT,
    "demo",
    NULL,
    0,
    demo_methods,
    demo_def_slots,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit_demo(void)
{
    return PyModuleDef_Init(&demo_def);
}
#endif
